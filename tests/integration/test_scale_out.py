"""Issue 9 on real engines: remote engines, and the plan's matrix on two engines sharing only the registry.

Two native engines, each on a test host of its own (a network namespace, slots
2 and 3), each with its own state folder and socket. The runners reach them the
way a CI runner reaches a remote engine: ``_EXPERIMENTAL_DAGGER_RUNNER_HOST``,
``unix://`` for one and ``tcp://`` for the other (``CARGOHOLD_ENGINE_LISTEN``).
The pipeline itself is unchanged: the real command line, in a subprocess.

1. ``plan --json`` on an empty registry namespace: the matrix holds both images.
2. The matrix, side by side: engine A builds the backend while engine B builds
   the frontend.
3. Engine B, which never built the backend, builds it after a code change: its
   heavy and dependency stages come from what engine A exported, as the cache
   report shows.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.engine import CLI_BIN_VAR, RUNNER_HOST_VAR, native_engine_dir
from cargohold.local_registry import local_registry_address
from tests.integration.testhost import addresses, second_host
from tests.integration.workspace import cache_outcomes, cli, cli_argv, copy_repo, new_report, on_host

TCP_PORT = 1234


@dataclass(frozen=True)
class Runner:
    """A runner whose engine is remote to it: the environment that reaches it, and how it is reached."""

    name: str
    env: dict[str, str]
    runner_host: str
    state: Path  # the runner's cargohold state (its client.env says which engine it used)


@contextlib.contextmanager
def engine_on_test_host(name: str, slot: int, namespace: str, work: Path, *, tcp: bool) -> Iterator[Runner]:
    """A native engine started in its own test host; yields a runner that reaches it as a remote engine."""
    with second_host(name, work, slot=slot) as host:
        _, engine_addr, _ = addresses(slot)
        listen = {"CARGOHOLD_ENGINE_LISTEN": f"tcp://{engine_addr}:{TCP_PORT}"} if tcp else {}
        env = on_host(host, namespace, work / "state", f"{name}:10.{90 + slot}.0.0/16", **listen)
        started = cli(work / "repo" / "cargohold.toml", env, "engine", "start", timeout=180)
        assert started.returncode == 0, started.stderr[-2000:]
        socket = work / "state" / "engine"
        host_var = f"tcp://{engine_addr}:{TCP_PORT}" if tcp else f"unix://{next(socket.glob('*/engine.sock'))}"
        bin_dir = native_engine_dir()
        assert bin_dir is not None
        # The native route off: the runner host is the only engine this runner can use.
        remote = env | {RUNNER_HOST_VAR: host_var, CLI_BIN_VAR: str(bin_dir / "dagger"), "CARGOHOLD_ENGINE_DIR": "none"}
        try:
            yield Runner(name, remote, host_var, work / "state")
        finally:
            cli(work / "repo" / "cargohold.toml", env, "engine", "stop", timeout=60)


@pytest.fixture(scope="module")
def namespace(bootstrapped: BootstrapReport) -> str:
    return f"{local_registry_address()}/scale-out-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("scale-out") / "repo")


@pytest.fixture(scope="module")
def runners(namespace: str, repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runner, Runner]]:
    work_a, work_b = tmp_path_factory.mktemp("engine-a"), tmp_path_factory.mktemp("engine-b")
    for work in (work_a, work_b):
        (work / "repo").symlink_to(repo)
    with (
        engine_on_test_host("scaleA", 2, namespace, work_a, tcp=False) as a,
        engine_on_test_host("scaleB", 3, namespace, work_b, tcp=True) as b,
    ):
        yield a, b


@dataclass(frozen=True)
class Job:
    """One matrix job's outcome."""

    runner: str
    service: str
    returncode: int
    stderr: str
    outcomes: dict[tuple[str, str], str]


def run_side_by_side(repo: Path, work: Path, jobs: list[tuple[Runner, str]], *extra: str) -> list[Job]:
    """``build --service <s>`` for each (runner, service), all at once; each job's cache report."""
    running = []
    for runner, service in jobs:
        report = new_report(work, f"{runner.name}-{service}")
        argv = ["build", "--service", service, "--cache-report", str(report), *extra]
        running.append((runner, service, report, _start(repo, runner.env, argv)))
    done = []
    for runner, service, report, proc in running:
        _, stderr = proc.communicate(timeout=1500)
        outcomes = cache_outcomes(report) if report.exists() else {}
        done.append(Job(runner.name, service, proc.returncode, stderr, outcomes))
    return done


def _start(repo: Path, env: dict[str, str], argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_argv(repo / "cargohold.toml", *argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def matrix(repo: Path, runners: tuple[Runner, Runner]) -> list[dict[str, str]]:
    """The plan's CI matrix for the empty namespace, as a CI job would read it (no engine)."""
    done = cli(repo / "cargohold.toml", runners[0].env, "plan", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    include: list[dict[str, str]] = json.loads(done.stdout)["matrix"]["include"]
    return include


@pytest.fixture(scope="module")
def side_by_side(
    repo: Path, runners: tuple[Runner, Runner], matrix: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> list[Job]:
    """The matrix, one job per engine at the same time: A the backend, B the frontend."""
    by_service = {"backend": runners[0], "frontend": runners[1]}
    jobs = [(by_service[row["service"]], row["service"]) for row in matrix]
    return run_side_by_side(repo, tmp_path_factory.mktemp("jobs"), jobs)


def test_the_plan_matrix_lists_every_image_of_an_empty_namespace(matrix: list[dict[str, str]]) -> None:
    assert sorted(row["service"] for row in matrix) == ["backend", "frontend"], matrix


def test_each_engine_builds_its_part_of_the_matrix_side_by_side(
    side_by_side: list[Job], runners: tuple[Runner, Runner]
) -> None:
    for job in side_by_side:
        assert job.returncode == 0, f"{job.runner} {job.service}:\n{job.stderr[-3000:]}"
        assert job.outcomes[(job.service, "runtime")] == "built", job.outcomes
    for runner in runners:
        client_env = (runner.state / "engine" / "client.env").read_text()
        assert f"export {RUNNER_HOST_VAR}={runner.runner_host}\n" in client_env, client_env
        assert "CARGOHOLD_NATIVE_RUNNER_HOST" not in client_env, client_env  # reached as a remote engine
    assert {r.runner_host.split(":")[0] for r in runners} == {"unix", "tcp"}


def test_the_second_engine_reuses_what_the_first_exported(
    side_by_side: list[Job], repo: Path, runners: tuple[Runner, Runner], tmp_path: Path
) -> None:
    assert all(job.returncode == 0 for job in side_by_side)
    # The training code: the bake runs again on engine B, on torch and the venv that engine A exported.
    train_py = repo / "services/backend/app/train.py"
    train_py.write_text(train_py.read_text() + "\n# a change to the training code, built on the other engine\n")
    report = new_report(tmp_path)
    done = cli(repo / "cargohold.toml", runners[1].env, "build", "--service", "backend", "--cache-report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {(r["service"], r["stage"]): r for r in json.loads(report.read_text())}
    assert rows[("backend", "heavy")]["outcome"] == "hit", rows  # torch, exported by engine A
    assert rows[("backend", "dependencies")]["outcome"] == "hit", rows
    assert rows[("backend", "bake")]["outcome"] == "built", rows
    assert rows[("backend", "heavy")]["pulled_bytes"] > 100_000_000, rows[("backend", "heavy")]
    assert rows[("backend", "runtime")]["outcome"] == "built", rows
