"""Issue 5 on the real engines and registry: the stage cache across runners, reuse, and a refusing cache.

Each test drives the real command line in a subprocess against a copy of the
repository, so what runs is exactly what a developer or a CI job runs. A warm
namespace is built once (module fixture); the tests then change one thing and
read the cache report (``build --cache-report``).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.daemon import Daemon, wait_until
from cargohold.local_registry import local_registry_address
from cargohold.reference import Reference
from cargohold.registry import Registry
from tests.integration.testhost import second_host
from tests.integration.workspace import cache_outcomes, cli, copy_repo, new_report, on_host, runner_env


def _cli(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(repo / "cargohold.toml", env, *args)


def _build(repo: Path, env: dict[str, str], *args: str) -> dict[tuple[str, str], str]:
    """Run ``build`` and return (service, stage) → outcome from its cache report."""
    report = new_report(repo)
    done = _cli(repo, env, "build", "--cache-report", str(report), *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return cache_outcomes(report)


@pytest.fixture(scope="module")
def namespace(bootstrapped: BootstrapReport) -> str:
    return f"{local_registry_address()}/cache-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def warm(namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository copy whose images and stage cache are in the namespace (built on the main engine)."""
    repo = copy_repo(tmp_path_factory.mktemp("warm") / "repo")
    outcomes = _build(repo, runner_env(namespace))
    assert outcomes[("backend", "runtime")] == "built"
    return repo


def test_no_change_on_a_fresh_runner_builds_nothing_and_needs_no_engine(
    warm: Path, namespace: str, tmp_path: Path
) -> None:
    fresh = runner_env(namespace, CARGOHOLD_CACHE_DIR=str(tmp_path / "fresh-runner"), CARGOHOLD_ENGINE_DIR="none")
    outcomes = _build(warm, fresh)
    assert outcomes[("backend", "runtime")] == "reused"
    assert outcomes[("frontend", "runtime")] == "reused"
    assert "built" not in outcomes.values(), outcomes
    assert not (tmp_path / "fresh-runner" / "engine").exists(), "an engine was started"


def test_a_code_change_on_a_fresh_engine_rebuilds_only_the_app_and_reuses_dependencies(
    warm: Path, namespace: str, tmp_path: Path
) -> None:
    repo = copy_repo(tmp_path / "repo")
    main_py = repo / "services/backend/app/main.py"
    main_py.write_text(main_py.read_text() + "\n# a code-only change\n")
    # A second engine with empty state, on a test host of its own: only the registry is shared.
    with second_host("chfresh", tmp_path) as host:
        fresh = on_host(host, namespace, tmp_path / "runner2", "chfresh:10.89.0.0/16")
        try:
            outcomes = _build(repo, fresh, "--service", "backend")
        finally:
            _cli(repo, fresh, "engine", "stop")
    assert outcomes[("backend", "heavy")] == "hit", outcomes
    assert outcomes[("backend", "dependencies")] == "hit", outcomes
    assert outcomes[("backend", "bake")] == "hit", outcomes  # main.py is not among the bake's inputs
    assert outcomes[("backend", "app")] == "built", outcomes
    assert outcomes[("backend", "runtime")] == "built", outcomes
    cache_repo = Reference.parse(f"{namespace}/cache/backend/cpu").repository
    heavy_tags = [t for t in Registry(local_registry_address()).tags(cache_repo) if t.startswith("heavy-")]
    assert len(heavy_tags) == 1, f"wanted torch exported once, got {heavy_tags}"


def test_a_lockfile_change_rebuilds_the_dependency_stage_and_keeps_the_model(
    warm: Path, namespace: str, tmp_path: Path
) -> None:
    repo = copy_repo(tmp_path / "repo")
    lock = repo / "services/backend/requirements/app.lock"
    lock.write_text(lock.read_text() + "six==1.16.0\n")
    registry = Registry(local_registry_address())
    packages_repo = Reference.parse(f"{namespace}/cache/backend/cpu/packages").repository
    before = set(registry.tags(packages_repo))
    outcomes = _build(repo, runner_env(namespace), "--service", "backend")
    assert outcomes[("backend", "heavy")] == "hit", outcomes
    assert outcomes[("backend", "dependencies")] == "built", outcomes
    assert outcomes[("backend", "bake")] == "hit", outcomes  # bake-packages = "heavy": the model needs torch alone
    # layer-per-package: six alone was installed and exported; every other package kept its entry.
    new = {t for t in set(registry.tags(packages_repo)) - before if not t.startswith("batch-")}  # batch: as pushed
    assert len(new) == 1, f"wanted one new package entry (six), got {sorted(new)}"
    assert new.pop().startswith("six-")
    assert len([t for t in before if not t.startswith(("venv-", "batch-"))]) == 16, sorted(before)  # app.lock's 16
    # The runtime is made of the packages' own layers: six's among them, and each of the others' as before.
    runtime = _manifest_layers(registry, Reference.parse(f"{namespace}/backend").repository, "cpu")
    parts = {tag: _manifest_layers(registry, packages_repo, tag) for tag in registry.tags(packages_repo)}
    assert all(set(layers) <= set(runtime) for layers in parts.values()), "a package layer is not in the runtime"


def _manifest_layers(registry: Registry, repository: str, tag: str) -> list[str]:
    digest = registry.manifest_digest(repository, tag)
    assert digest is not None, f"{repository}:{tag} is missing"
    return [layer["digest"] for layer in json.loads(registry.get_manifest(repository, digest))["layers"]]


def test_a_frontend_change_leaves_the_backend_untouched(warm: Path, namespace: str, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    main_ts = repo / "services/frontend/src/main.ts"
    main_ts.write_text(main_ts.read_text() + "\n// a frontend-only change\n")
    done = _cli(repo, runner_env(namespace), "plan", "--json")
    assert done.returncode == 0, done.stderr
    plan = {t["service"]: t for t in json.loads(done.stdout)["targets"]}
    assert plan["backend"]["action"] == "reuse"
    assert plan["frontend"]["action"] == "build"
    cached = {s["stage"]: s["cached"] for s in plan["frontend"]["stages"]}
    # npm ci, the server files and the runtime base reused; only the build is not
    assert cached == {"dependencies": True, "build": False, "app": True, "runtime-base": True}, cached
    assert json.loads(done.stdout)["matrix"] == {"include": [{"service": "frontend", "variant": "default"}]}


def test_a_registry_refusing_cache_pushes_only_warns(warm: Path, namespace: str, tmp_path: Path) -> None:
    port = 5000 + uuid.uuid4().int % 500 + 100
    readonly = _readonly_registry(tmp_path, port)
    try:
        cache = f'\nproject.cache = "127.0.0.1:{port}/refusing"'
        env = runner_env(f"{namespace}-ro", CARGOHOLD_OVERRIDES=runner_env(namespace)["CARGOHOLD_OVERRIDES"] + cache)
        done = _cli(warm, env, "build", "--service", "frontend")
    finally:
        readonly.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the build goes on" in done.stderr
    assert "export warnings" in done.stderr
    image_repo = Reference.parse(f"{namespace}-ro/frontend").repository
    assert Registry(local_registry_address()).manifest_digest(image_repo, "default") is not None


def _readonly_registry(tmp_path: Path, port: int) -> Daemon:
    """A real registry in read-only maintenance mode: it answers reads and refuses every push."""
    config = tmp_path / "readonly.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'ro-data'}\n  maintenance:\n    readonly:\n      enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    daemon = Daemon("read-only registry", tmp_path / "ro.pid", tmp_path / "ro.log", "docker-registry")
    daemon.start(["/usr/bin/docker-registry", "serve", str(config)])
    wait_until(Registry(f"127.0.0.1:{port}", timeout=1.0).ping, 20.0, daemon)
    return daemon
