"""Issue 10 on the real engine and registry: a faulty registry, interrupted runs, and a canary token.

A fault-injecting proxy (``faultproxy.py``) sits in front of the real local
registry; cargohold and the engine talk to it as to any registry. The images
come from one ``ci`` run into a namespace that stays between runs (see
``reliability_support``); each scenario then builds a small change or
publishes into a namespace of its own. Every scenario records its numbers
for ``docs/reliability.md`` once its assertions held.
"""

from __future__ import annotations

import base64
import gzip
import json
import signal
import tarfile
import uuid
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from cargohold.oci_image import ImageConfig, compress_layer, push_image
from cargohold.paths import state_path
from tests.integration.faultproxy import Rule, fault_proxy
from tests.integration.reliability_support import (
    SERVICES,
    change_frontend,
    cli,
    descendants,
    direct,
    git_repo,
    interrupt,
    layers,
    planned_digests,
    release_tags,
    scratch,
    start,
    tags,
    with_cache,
)
from tests.integration.workspace import copy_repo, runner_env
from tests.reliability import record

HTTPX = r"^python-httpx/"  # cargohold's own registry client
ENGINE = r"^(?!python-httpx/)"  # anything else: the engine pulling or pushing


@pytest.fixture(scope="module")
def checked(bootstrapped: BootstrapReport, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A committed repository copy whose images ci built and checked in the ``reliability`` namespace."""
    repo = git_repo(tmp_path_factory.mktemp("reliability") / "repo")
    namespace = f"{local_registry_address()}/reliability"
    done = cli(repo, runner_env(namespace), "ci", "--only", "lint,test,build")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return repo, namespace


def _frontend_build(repo: Path, env: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """``build --service frontend``: exit code, stderr, and stage → outcome from the cache report."""
    report = repo / f"cache-report-{uuid.uuid4().hex[:6]}.json"
    done = cli(repo, env, "build", "--service", "frontend", "--cache-report", str(report))
    outcomes = {r["stage"]: r["outcome"] for r in json.loads(report.read_text())} if report.exists() else {}
    return done.returncode, done.stderr, outcomes


# --- registry faults: the stage cache ------------------------------------------------------------


def test_a_failing_cache_import_is_a_miss_and_the_build_goes_on(checked: tuple[Path, str], tmp_path: Path) -> None:
    _, namespace = checked
    repo = copy_repo(tmp_path / "repo")
    change_frontend(repo)
    _, path = direct(namespace)
    rule = Rule("GET", rf"^/v2/{path}/cache/frontend/.*/blobs/", "500", times=None, client=HTTPX)
    with fault_proxy(rule) as proxy:
        env = with_cache(scratch("rel-import"), f"{proxy.address}/{path}")
        code, err, outcomes = _frontend_build(repo, env)
    assert code == 0, err[-3000:]
    assert outcomes["dependencies"] == "built", outcomes  # in the cache, but unreadable: a miss
    assert "treated as a miss" in err
    assert proxy.faults >= 4, proxy.counts()  # the client's tries: bounded, then a miss
    record("registry faults", "cache import fails (HTTP 500 on every cache blob read)", "500 on GET …/cache/…/blobs/*",
           "a miss: the stage was built, the build passed", **proxy.counts())  # fmt: skip


def test_a_transient_cache_fault_is_retried_and_still_a_hit(checked: tuple[Path, str], tmp_path: Path) -> None:
    _, namespace = checked
    repo = copy_repo(tmp_path / "repo")
    change_frontend(repo)
    _, path = direct(namespace)
    rules = (
        Rule("GET", rf"^/v2/{path}/cache/frontend/.*/manifests/", "reset", client=HTTPX),
        Rule("GET", rf"^/v2/{path}/cache/frontend/.*/blobs/", "503", client=HTTPX),
        Rule("HEAD", rf"^/v2/{path}/cache/frontend/.*/manifests/dependencies-", "429", skip=1, client=HTTPX),
    )
    with fault_proxy(*rules) as proxy:
        env = with_cache(scratch("rel-transient"), f"{proxy.address}/{path}")
        code, err, outcomes = _frontend_build(repo, env)
    assert code == 0, err[-3000:]
    assert outcomes["dependencies"] == "hit", outcomes
    assert proxy.faults == 3, proxy.counts()
    assert proxy.retries >= 3, proxy.counts()
    record("registry faults", "cache lookups: a reset, a 503, a 429 (Retry-After: 1)", "one of each, then healthy",
           "retried; the stage was a cache hit", **proxy.counts())  # fmt: skip


def _plant_entry(namespace: str, tag: str, work: Path) -> str:
    """A cache entry under ``tag`` whose one layer no engine has seen (so it must be pulled); its digest."""
    rootfs, payload = work / "rootfs.tar", work / "payload"
    payload.write_bytes(uuid.uuid4().bytes * 4096)
    with tarfile.open(rootfs, "w") as tar:
        tar.add(payload, arcname="app/node_modules/planted")
    layer = compress_layer(rootfs, work / "layer.tar.gz")
    registry, path = direct(namespace)
    push_image(registry, f"{path}/cache/frontend/default", tag, layer, config=ImageConfig(), history="planted",
               annotations={})  # fmt: skip
    return layer.digest


def test_a_corrupted_cache_layer_is_a_miss_and_the_build_goes_on(checked: tuple[Path, str], tmp_path: Path) -> None:
    _, namespace = checked
    repo = copy_repo(tmp_path / "repo")
    change_frontend(repo)
    plan = cli(repo, runner_env(namespace), "plan", "--json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    frontend = next(t for t in json.loads(plan.stdout)["targets"] if t["service"] == "frontend")
    deps = next(f"dependencies-{s['key'][:48]}" for s in frontend["stages"] if s["stage"] == "dependencies")
    cache = scratch("rel-corrupt-cache")
    layer = _plant_entry(cache, deps, tmp_path)  # the dependency stage's tag, with a layer the engine must pull
    rule = Rule("GET", rf"/blobs/{layer}", "corrupt", times=None, client=ENGINE)
    with fault_proxy(rule) as proxy:
        env = with_cache(scratch("rel-corrupt-images"), cache.replace(local_registry_address(), proxy.address))
        code, err, outcomes = _frontend_build(repo, env)
    assert code == 0, err[-3000:]
    assert proxy.faults >= 1, proxy.counts()
    assert outcomes["dependencies"] == "built", outcomes
    assert "treated as a miss" in err
    record("registry faults", "a corrupted cache layer (engine pull)", "one byte flipped in the cached layer",
           "the engine's digest check failed the import: a miss, the stage was built", **proxy.counts())  # fmt: skip


def test_a_failing_cache_export_warns_and_the_build_succeeds(tmp_path: Path, bootstrapped: BootstrapReport) -> None:
    repo = copy_repo(tmp_path / "repo")
    change_frontend(repo)
    images = scratch("rel-export")
    rule = Rule("PUT", r"/cache/frontend/.*/manifests/", "500", times=None)
    with fault_proxy(rule) as proxy:
        env = with_cache(images, f"{proxy.address}/rel-export-cache-{uuid.uuid4().hex[:8]}")
        code, err, outcomes = _frontend_build(repo, env)
    assert code == 0, err[-3000:]
    assert "the build goes on" in err
    assert set(outcomes.values()) == {"built"}, outcomes
    assert "default" in tags(images, "frontend"), "the image was not pushed"
    assert proxy.faults >= 2, proxy.counts()  # both stages' exports refused
    record("registry faults", "cache export fails (HTTP 500 on every cache manifest push)",
           "500 on PUT …/cache/…/manifests/*", "a warning per stage; the image was built and pushed",
           **proxy.counts())  # fmt: skip


# --- registry faults: publishing -----------------------------------------------------------------


def _publish(checked: tuple[Path, str], to: str, version: str, **env: str) -> tuple[int, str, str]:
    repo, namespace = checked
    done = cli(repo, runner_env(namespace, **env), "publish", "--to", to, "--version", version)
    return done.returncode, done.stdout, done.stderr


def test_publish_through_transient_faults_is_retried_and_complete(checked: tuple[Path, str]) -> None:
    release = f"rel-pub-{uuid.uuid4().hex[:8]}"
    rules = (
        Rule("PUT", rf"^/v2/{release}/\w+/manifests/sha256:", "503", times=2),
        Rule("POST", rf"^/v2/{release}/\w+/blobs/uploads/", "429", times=1),
        Rule("HEAD", rf"^/v2/{release}/\w+/blobs/", "reset", times=1),
        Rule("PUT", rf"^/v2/{release}/\w+/blobs/uploads/", "500", times=1),
        Rule("PUT", rf"^/v2/{release}/\w+/manifests/latest", "reset", times=1),
    )
    with fault_proxy(*rules) as proxy:
        code, out, err = _publish(checked, f"{proxy.address}/{release}", "2.0.0")
    assert code == 0, err[-3000:]
    planned = planned_digests(out)
    registry, _ = direct(f"{local_registry_address()}/{release}")
    for service in SERVICES:
        for tag in ("2.0.0", "2.0", "2", "latest"):
            assert registry.manifest_digest(f"{release}/{service}", tag) == planned[service], (service, tag)
    assert proxy.faults == 6, proxy.counts()
    assert proxy.retries >= 6, proxy.counts()
    record("registry faults", "publish through transient faults", "503 twice, 429, reset twice, 500 on pushes and tags",
           "every fault retried; every tag on the planned digest", **proxy.counts())  # fmt: skip


def test_publish_with_a_permanent_fault_fails_at_once_and_moves_no_tag(checked: tuple[Path, str]) -> None:
    release = f"rel-perm-{uuid.uuid4().hex[:8]}"
    rule = Rule("PUT", rf"^/v2/{release}/frontend/manifests/sha256:", "403", times=None)
    with fault_proxy(rule) as proxy:
        code, _, err = _publish(checked, f"{proxy.address}/{release}", "2.0.0")
    assert code == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: could not write the manifest"), last
    assert "HTTP 403" in last
    assert "Traceback" not in err
    assert rule.matched == 1, "a permanent error was retried"
    for service in SERVICES:
        assert release_tags(f"{local_registry_address()}/{release}", service) == [], f"{service}: a tag moved"
    record("registry faults", "publish with a permanent fault", "403 on the frontend's manifest push",
           "failed on the first try with one error line; no tag moved", lost_releases=0,
           **proxy.counts())  # fmt: skip


def test_a_corrupted_layer_is_detected_by_digest_and_nothing_is_published(checked: tuple[Path, str]) -> None:
    repo, namespace = checked
    largest = layers(namespace, "backend", "cpu")[-1]
    release = scratch("rel-corrupt")
    rule = Rule("GET", rf"/blobs/{largest}", "corrupt", times=None, client=HTTPX)
    with fault_proxy(rule) as proxy:
        # The build registry is read through the proxy; the release goes straight to the registry.
        source = namespace.replace(local_registry_address(), proxy.address)
        done = cli(repo, runner_env(source), "publish", "--to", release, "--version", "2.0.0")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "does not match its digest" in done.stderr.strip().splitlines()[-1]
    for service in SERVICES:
        assert tags(release, service) == [], f"{service}: something was published"
    registry, path = direct(release)
    assert not registry.blob_exists(f"{path}/backend", largest)
    record("registry faults", "a corrupted layer on its way to the release", "one byte flipped in the torch layer",
           "digest mismatch detected before upload; nothing published", lost_releases=0,
           **proxy.counts())  # fmt: skip


# --- interruption ---------------------------------------------------------------------------------


_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_while_planning_exits_at_once(checked: tuple[Path, str], signum: signal.Signals) -> None:
    repo, namespace = checked
    _, path = direct(namespace)
    rule = Rule("HEAD", r"/manifests/", "stall", stall=120)
    with fault_proxy(rule) as proxy:
        env = runner_env(f"{proxy.address}/{path}")
        proc = start(repo, env, "ci", "--only", "lint,test,build")
        assert rule.hit.wait(120), "the plan never asked the registry"
        code, err, left = interrupt(proc, signum)
    assert code == _EXIT[signum], err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err[-500:]
    assert not left, f"processes left behind: {left}"
    again = cli(repo, runner_env(namespace), "ci", "--only", "lint,test,build")
    assert again.returncode == 0, again.stderr[-2000:]
    record("interruption", f"{signum.name} while planning", "the first registry lookup stalled",
           f"exit {code} at once; the next run passed", interrupted=1, **proxy.counts())  # fmt: skip


def test_an_interrupt_during_a_build_closes_the_session_and_leaves_no_tag(
    tmp_path: Path, bootstrapped: BootstrapReport
) -> None:
    signum = signal.SIGTERM  # it takes the SIGINT path (interrupts.py), so this covers Ctrl-C too
    repo = copy_repo(tmp_path / "repo")
    change_frontend(repo)
    images = scratch("rel-int-build")
    _, path = direct(images)
    rule = Rule("PUT", rf"^/v2/{path}/frontend/manifests/default-", "stall", stall=300)
    with fault_proxy(rule) as proxy:
        proc = start(repo, runner_env(images.replace(local_registry_address(), proxy.address)), "build",
                     "--service", "frontend")  # fmt: skip
        assert rule.hit.wait(600), "the build never pushed its image"
        session = descendants_named(proc.pid, "dagger")
        code, err, left = interrupt(proc, signum)
    assert session, "no dagger session process was found under the build"
    assert code == _EXIT[signum], err[-2000:]
    assert "Traceback" not in err
    assert not left, f"processes left behind: {left}"
    assert tags(images, "frontend") == [], "a tag was written by an interrupted build"
    again = cli(repo, runner_env(images), "build", "--service", "frontend")  # the engine still serves
    assert again.returncode == 0, again.stderr[-2000:]
    assert "default" in tags(images, "frontend")
    record("interruption", f"{signum.name} during a build", "the image push stalled in the engine",
           f"exit {code}; the session closed, no tag; the next build passed", interrupted=1,
           **proxy.counts())  # fmt: skip


def descendants_named(pid: int, name: str) -> set[int]:
    """Processes below ``pid`` whose command is ``name``."""
    found = set()
    for child in descendants(pid):
        try:
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if comm == name:
            found.add(child)
    return found


def _interrupted_publish(
    checked: tuple[Path, str], release: str, rule: Rule, sig: signal.Signals
) -> tuple[str, str, dict[str, int]]:
    """Publish 3.0.0 through a proxy applying ``rule``; send ``sig`` once the rule hits.

    Checks the exit code (130 or 143) and that no process was left behind; returns the release's
    address on the real registry, the run's stderr and the proxy's counts.
    """
    repo, namespace = checked
    with fault_proxy(rule) as proxy:
        proc = start(repo, runner_env(namespace), "publish", "--to", f"{proxy.address}/{release}", "--version", "3.0.0")
        assert rule.hit.wait(600), f"publish never reached {rule.method} {rule.path}"
        code, err, left = interrupt(proc, sig)
    assert code == 128 + sig, err[-2000:]
    assert not left, f"processes left behind: {left}"
    return f"{local_registry_address()}/{release}", err, proxy.counts()


def test_sigint_while_pushing_by_digest_moves_no_tag_and_the_rerun_completes(checked: tuple[Path, str]) -> None:
    release = f"rel-int-pub-{uuid.uuid4().hex[:8]}"
    rule = Rule("PUT", rf"^/v2/{release}/frontend/manifests/sha256:", "stall", stall=300)
    target, _, counts = _interrupted_publish(checked, release, rule, signal.SIGINT)
    assert all(release_tags(target, s) == [] for s in SERVICES), "a tag moved"
    rc, _, err = _publish(checked, target, "3.0.0")
    assert rc == 0, err[-2000:]
    assert all("latest" in release_tags(target, s) for s in SERVICES)
    record("interruption", "SIGINT while pushing by digest", "the frontend's manifest push stalled",
           "exit 130, no tag moved; the rerun published every tag", interrupted=1, lost_releases=0,
           **counts)  # fmt: skip


def test_sigterm_while_moving_tags_finishes_the_tags_first(checked: tuple[Path, str]) -> None:
    release = f"rel-int-tags-{uuid.uuid4().hex[:8]}"
    # The first tag write (not a digest, not the SBOM's sha256-… tag) waits 5 s, then goes through.
    rule = Rule("PUT", rf"^/v2/{release}/\w+/manifests/(?!sha256)", "stall", stall=5, then_forward=True)
    target, err, counts = _interrupted_publish(checked, release, rule, signal.SIGTERM)
    wanted = {"3.0.0", "3.0", "3", "latest"}
    for service in SERVICES:
        assert wanted <= set(release_tags(target, service)), f"{service}: a half-moved release"
    assert "Traceback" not in err
    rc, _, err = _publish(checked, target, "3.0.0")
    assert rc == 0, err[-2000:]
    record("interruption", "SIGTERM while moving tags", "the first tag write stalled 5 s",
           "the tag phase finished (all or nothing), then exit 143; the rerun passed", interrupted=1,
           lost_releases=0, **counts)  # fmt: skip


# --- secrets --------------------------------------------------------------------------------------


def _needles(canary: str, user: str) -> list[bytes]:
    pair = f"{user}:{canary}".encode()
    return [canary.encode(), base64.b64encode(canary.encode()), base64.b64encode(pair)]


def _hits(data: bytes, needles: list[bytes]) -> int:
    return sum(data.count(n) for n in needles)


def _scan_release(namespace: str, needles: list[bytes]) -> tuple[int, int]:
    """(hits, blobs scanned) over every manifest, config, layer (decompressed) and SBOM of a release."""
    registry, path = direct(namespace)
    hits = scanned = 0
    for service in SERVICES:
        repo = f"{path}/{service}"
        digests = {registry.manifest_digest(repo, t) for t in registry.tags(repo)}
        for digest in filter(None, digests):
            manifest = registry.get_manifest(repo, digest)
            hits += _hits(manifest, needles)
            parsed = json.loads(manifest)
            for blob in [parsed["config"], *parsed.get("layers", [])]:
                data = registry.get_blob(repo, blob["digest"])
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                hits += _hits(data, needles)
                scanned += 1
    return hits, scanned


def test_a_canary_token_never_leaks(checked: tuple[Path, str], tmp_path: Path) -> None:
    repo, namespace = checked
    canary, user = f"canary-{uuid.uuid4().hex}", "release-bot"
    needles = _needles(canary, user)
    token_file = tmp_path / "token"
    token_file.write_text(canary + "\n")
    release = f"rel-secret-{uuid.uuid4().hex[:8]}"
    engine_log = state_path("engine", "v0.21.8", "engine.log")
    log_start = engine_log.stat().st_size if engine_log.exists() else 0
    outputs = []
    with fault_proxy(require_auth=(user, canary)) as proxy:
        to = f"{proxy.address}/{release}"
        for version, where in (("4.0.0", "env:CARGOHOLD_TEST_CANARY"), ("4.0.1", f"file:{token_file}")):
            env = runner_env(namespace, CARGOHOLD_TEST_CANARY=canary)
            done = cli(repo, env, "publish", "--to", to, "--version", version, "--username", user, "--token", where)
            assert done.returncode == 0, done.stderr[-2000:]
            outputs += [done.stdout, done.stderr]
    assert proxy.authorized > 0, "the credentials were never checked"
    hits = _hits("\n".join(outputs).encode(), needles)
    files = [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts]
    hits += sum(_hits(p.read_bytes(), needles) for p in files)
    if engine_log.exists():
        with engine_log.open("rb") as log:
            log.seek(log_start)
            hits += _hits(log.read(), needles)
    image_hits, scanned = _scan_release(f"{local_registry_address()}/{release}", needles)
    hits += image_hits
    assert hits == 0, "the canary token leaked"
    assert scanned > 4
    record("secrets", "a canary token through --token env: and file: (basic auth checked by the proxy)",
           f"a unique token; scanned: stdout, stderr, {len(files)} files of the run, the engine log, "
           f"{scanned} blobs (manifests, configs, layers, SBOMs)", "published with the credentials checked; 0 hits",
           requests=proxy.requests, secret_hits=hits)  # fmt: skip
