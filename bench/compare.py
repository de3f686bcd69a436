"""cargohold, raw Dagger and the Dockerfile way, side by side: one command, every scenario, both services.

    python bench/compare.py [--reps N] [--json out.json] [--markdown out.md]
                            [--services backend,frontend] [--ways dockerfile,raw-dagger,cargohold]

The three ways build the same recipe from the same base images (the local
Debian-built ones, pinned by digest), the same torch wheel and into the same
registry (the local one):

- **dockerfile**: ``bench/dockerfiles/<service>.Dockerfile`` with Debian's
  docker.io 20.10 (``DOCKER_BUILDKIT=1``, inline cache, ``--cache-from`` the
  registry image), on a daemon of the bench's own (``--docker-host``);
- **raw-dagger**: ``bench/raw_dagger.py``, the recipe as plain Dagger calls, no
  content keys, no registry cache, ``Container.publish`` to push;
- **cargohold**: the real CLI, ``pipelines.py build --service S`` (a build always
  pushes: the registry is its cache).

Both Dagger ways run on a *fresh* native engine in the benchmark's test host
(``tests/integration/testhost.py``, slot 1), never on the machine's main engine.

Scenarios, per way, service and repetition (a registry namespace of its own):

1. cold: empty build state (Docker: ``builder prune -af``, images removed;
   Dagger: a new engine with empty state), empty namespace; build and push;
2. warm, no change: build again;
3. warm, code-only change: one line appended to the app's code;
4. dependency change that does not touch torch: the backend's lockfile gets a
   package, the frontend's package.json a new field (``npm ci`` runs again);
5. fresh runner, no change: the sources as in (1), local build state wiped, the
   registry kept;
6. fresh runner, code-only change (a new line, never built before);
7. publish a code-only change: on the warm runner of (6), another new line;
   build and push.

Figures: wall seconds of the client command(s); the client process tree's peak
RSS (``wait4``'s ``ru_maxrss``, the largest single process); bytes pushed
(client → registry) and pulled (registry → client), counted by a TCP relay in
front of the registry that every way's registry traffic goes through (HTTP
included, so a few kB of requests and headers too); the cold image's compressed
bytes (manifest) and uncompressed bytes (its layers read back and unpacked),
with the paths that make the difference; a smoke test of each image (backend:
``/health`` with PostgreSQL, a prediction, uid 10001; frontend: ``/health``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Final

ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "ci" / "src"))

from tests.integration.testhost import Relay, TestHost, second_host  # noqa: E402
from tests.integration.workspace import WHEELS, copy_repo, runner_env  # noqa: E402

from cargohold.base_images import find_base_images  # noqa: E402 - after the path is set
from cargohold.image_facts import image_manifest  # noqa: E402
from cargohold.reference import Reference  # noqa: E402
from cargohold.registry import Registry  # noqa: E402

REGISTRY: Final = "127.0.0.1:5000"  # the machine's local registry (never wiped or restarted here)
RELAY_PORT: Final = 5091  # the counting relay in front of it: 127.0.0.1:5091
DOCKER: Final = "/usr/bin/docker"  # Debian's docker.io 20.10 client
ENGINE_BIN: Final = Path("/opt/dagger/current/bin")
CA_BUNDLE: Final = "/etc/ssl/certs/ca-certificates.crt"
GC_POLICY: Final = {"maxUsedSpace": "40GB", "reservedSpace": "10GB", "minFreeSpace": "2GB"}
WAYS: Final = ("dockerfile", "raw-dagger", "cargohold")
SERVICES: Final = ("backend", "frontend")
SCENARIOS: Final = (
    "cold: build + push",
    "warm, no change",
    "warm, code-only change",
    "dependency change (not torch)",
    "fresh runner, no change",
    "fresh runner, code-only change",
    "publish a code-only change",
)
BASES: Final = {"backend": ("python-build", "python"), "frontend": ("node", "node-runtime")}
DASH: Final = "\N{EN DASH}"
TIMES: Final = "\N{MULTIPLICATION SIGN}"
HTTP_OK: Final = 200
CODE_FILE: Final = {"backend": "app/main.py", "frontend": "src/main.ts"}
# What the Dockerfile way keeps and cargohold's runtime may leave out (first match wins).
BUCKETS: Final = (
    ("torch/test", "/torch/test/"),
    ("torch/include", "/torch/include/"),
    ("torch/bin", "/torch/bin/"),
    ("torch/share/cmake", "/torch/share/cmake/"),
    ("pip", "/site-packages/pip/"),
    ("pip", "/site-packages/pip-"),
    ("setuptools", "/site-packages/setuptools"),
    ("setuptools", "/site-packages/pkg_resources/"),
    ("setuptools", "/site-packages/_distutils_hack/"),
    ("bytecode (.pyc)", ".pyc"),
)


# ---------------------------------------------------------------------------------------------
# Counting what crosses the registry's port


class CountingRelay:
    """A relay to the registry (the test host's) that counts bytes each way: up = pushed, down = pulled."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.up = 0
        self.down = 0
        self.lock = threading.Lock()
        self.relay = Relay(listen, target, self._count, timeout=300)
        self.relay.start()

    def _count(self, direction: str, n: int) -> None:
        with self.lock:
            if direction == "up":
                self.up += n
            else:
                self.down += n

    def take(self) -> tuple[int, int]:
        """The counts since the last call (pushed, pulled), and start again from zero."""
        with self.lock:
            counts = (self.up, self.down)
            self.up = self.down = 0
        return counts

    def close(self) -> None:
        """Stop listening."""
        self.relay.stop()


# ---------------------------------------------------------------------------------------------
# Running a client command


@dataclass
class Measure:
    """One scenario's figures for one way."""

    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    pushed_mb: float = 0.0
    pulled_mb: float = 0.0
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ok: bool = True
    note: str = ""
    reference: str = ""


def run(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> tuple[float, float, int, str]:
    """Run a client command: wall seconds, peak RSS in MB (``wait4``), exit code, its output."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        began = time.monotonic()
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - began
        child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    return seconds, usage.ru_maxrss / 1024, child.returncode, text[text.rfind(f"$ {argv[0]}") :]


def quiet(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A setup command, not measured."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=1800)


# ---------------------------------------------------------------------------------------------
# The three ways


@dataclass
class Context:
    """What every way shares for one service and repetition."""

    service: str
    repo: Path  # a copy of the repository that scenarios change
    namespace: str  # its registry namespace
    work: Path
    log: Path
    host: TestHost
    relay_host: str  # the counting relay as the host reaches it (127.0.0.1:port)
    bases: dict[str, str]  # base image name → digest reference at the local registry


class Way:
    """How one way resets its state and builds."""

    name = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def reset(self) -> None:
        """Wipe the local build state (the registry stays)."""
        raise NotImplementedError

    def build(self, *, push: bool) -> Measure:
        """Build the service (and push it when ``push``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop whatever ``reset`` started."""


class DockerfileWay(Way):
    """``docker build`` with BuildKit and inline cache, ``docker push``; Debian's docker.io 20.10."""

    name = "dockerfile"

    def __init__(self, ctx: Context, docker_host: str) -> None:
        super().__init__(ctx)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env |= {"DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "1"}
        self.image = f"{ctx.relay_host}/{ctx.namespace}/{ctx.service}:latest"

    def context_dir(self) -> Path:
        """The build context: the service folder, with the torch wheel linked in for the backend."""
        folder = self.ctx.repo / "services" / self.ctx.service
        if self.ctx.service == "backend" and not (folder / "wheels").exists():
            (folder / "wheels").mkdir()
            for wheel in WHEELS.glob("*.whl"):
                os.link(wheel, folder / "wheels" / wheel.name)
        return folder

    def reset(self) -> None:
        """``docker builder prune -af`` and every image removed."""
        quiet([DOCKER, "builder", "prune", "-af"], self.env)
        images = quiet([DOCKER, "images", "-aq"], self.env).stdout.split()
        if images:
            quiet([DOCKER, "rmi", "-f", *sorted(set(images))], self.env)

    def build(self, *, push: bool) -> Measure:
        """One build, from the registry's inline cache when there is one; then the push."""
        builder, runtime = (relayed(self.ctx.bases[b], self.ctx.relay_host) for b in BASES[self.ctx.service])
        names = ("BUILDER_IMAGE", "RUNTIME_IMAGE") if self.ctx.service == "backend" else ("NODE_IMAGE", "RUNTIME_IMAGE")
        argv = [DOCKER, "build", "--network", "host", "--progress", "plain",
                "-f", str(ROOT / "bench" / "dockerfiles" / f"{self.ctx.service}.Dockerfile"),
                "--secret", f"id=ca,src={CA_BUNDLE}", "--build-arg", "BUILDKIT_INLINE_CACHE=1",
                "--build-arg", f"{names[0]}={builder}", "--build-arg", f"{names[1]}={runtime}",
                "--cache-from", self.image, "-t", self.image, str(self.context_dir())]  # fmt: skip
        seconds, rss, code, text = run(argv, self.env, self.ctx.log)
        measure = Measure(seconds=seconds, peak_rss_mb=rss, ok=code == 0, note="" if code == 0 else text[-600:])
        if push and code == 0:
            seconds, rss, code, text = run([DOCKER, "push", self.image], self.env, self.ctx.log)
            measure.seconds += seconds
            measure.peak_rss_mb = max(measure.peak_rss_mb, rss)
            measure.ok = code == 0
            measure.note = "" if code == 0 else text[-600:]
            measure.reference = self.image
        return measure


class DaggerWay(Way):
    """The two ways on a fresh native engine in the test host: its state is a folder of our own."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.generation = 0
        self.state = ctx.work / f"{self.name}-state-0"

    def engine_env(self) -> dict[str, str]:
        """The environment of cargohold on this runner: its state folder, the test host's engine and registry."""
        env = runner_env(
            f"{self.ctx.host.registry}/{self.ctx.namespace}",
            CARGOHOLD_LOCAL_REGISTRY=self.ctx.host.registry,
            CARGOHOLD_PLAIN_HTTP_REGISTRIES=self.ctx.host.registry,
            CARGOHOLD_CACHE_DIR=str(self.state),
            CARGOHOLD_ENGINE_DIR=str(ENGINE_BIN),
            CARGOHOLD_ENGINE_NETNS=self.ctx.host.netns,
            CARGOHOLD_ENGINE_CONFIG=str(self.ctx.host.engine_config),
            CARGOHOLD_ENGINE_NETWORK=f"{self.ctx.host.netns}:10.90.0.0/16",
        )
        env.pop("NO_COLOR", None)
        return env

    def cli(self, *args: str) -> list[str]:
        """The real cargohold command line, on the repository copy."""
        return [sys.executable, str(ROOT / "pipelines.py"), "--config", str(self.ctx.repo / "cargohold.toml"), *args]

    def reset(self) -> None:
        """Stop the engine, throw its state away, start a new one on an empty state folder (not timed)."""
        self.close()
        shutil.rmtree(self.state, ignore_errors=True)
        self.generation += 1
        self.state = self.ctx.work / f"{self.name}-state-{self.generation}"
        done = quiet(self.cli("engine", "start"), self.engine_env())
        if done.returncode != 0:
            raise SystemExit(f"error: the fresh engine did not start: {done.stderr[-800:]}")

    def close(self) -> None:
        """Stop this way's engine."""
        if self.state.exists():
            quiet(self.cli("engine", "stop"), self.engine_env())


class RawDaggerWay(DaggerWay):
    """``bench/raw_dagger.py``: plain Dagger calls on the same engine kind."""

    name = "raw-dagger"

    def build(self, *, push: bool) -> Measure:
        """One run of the script against the fresh engine's socket."""
        socket_path = next(self.state.glob("engine/*/engine.sock"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("_EXPERIMENTAL_DAGGER", "CARGOHOLD_"))}
        env |= {"_EXPERIMENTAL_DAGGER_RUNNER_HOST": f"unix://{socket_path}",
                "_EXPERIMENTAL_DAGGER_CLI_BIN": str(ENGINE_BIN / "dagger")}  # fmt: skip
        builder, runtime = (relayed(self.ctx.bases[b], self.ctx.host.registry) for b in BASES[self.ctx.service])
        ref = f"{self.ctx.host.registry}/{self.ctx.namespace}/{self.ctx.service}:latest"
        argv = [sys.executable, str(ROOT / "bench" / "raw_dagger.py"), self.ctx.service,
                str(self.ctx.repo / "services" / self.ctx.service), "--builder", builder, "--runtime", runtime,
                "--wheels", str(WHEELS), *(["--publish", ref] if push else [])]  # fmt: skip
        seconds, rss, code, text = run(argv, env, self.ctx.log)
        published = text.strip().splitlines()[-1] if code == 0 and push else ""
        return Measure(seconds=seconds, peak_rss_mb=rss, ok=code == 0, note="" if code == 0 else text[-600:],
                       reference=published)  # fmt: skip


class CargoholdWay(DaggerWay):
    """The real CLI: ``build --service S`` (plan, reuse or build, push)."""

    name = "cargohold"

    def build(self, *, push: bool) -> Measure:  # noqa: ARG002 - cargohold's build always pushes
        """One run of ``pipelines.py build``; what it did, from its cache report."""
        report = self.ctx.work / f"report-{uuid.uuid4().hex[:6]}.json"
        argv = self.cli("build", "--service", self.ctx.service, "--cache-report", str(report))
        seconds, rss, code, text = run(argv, self.engine_env(), self.ctx.log)
        measure = Measure(seconds=seconds, peak_rss_mb=rss, ok=code == 0, note="" if code == 0 else text[-600:])
        if report.exists():
            records = json.loads(report.read_text())
            measure.note = ", ".join(f"{r['stage']} {r['outcome']}" for r in records)
        for line in text.splitlines():
            words = [*line.split(), "", "", ""]
            if words[0].startswith(f"{self.ctx.service}:") and words[1] in {"built", "reused"}:
                measure.reference = words[2]
                measure.note = f"{words[1]}; {measure.note}".rstrip("; ")
        return measure


def relayed(reference: str, registry: str) -> str:
    """A base image reference at the local registry, reached through ``registry`` instead."""
    return reference.replace(REGISTRY, registry, 1)


# ---------------------------------------------------------------------------------------------
# Changes to the repository copy


def append_line(repo: Path, service: str) -> None:
    """A code-only change never built before: a comment line at the end of the app's entry module."""
    path = repo / "services" / service / CODE_FILE[service]
    marker = "#" if service == "backend" else "//"
    path.write_text(path.read_text() + f"\n{marker} bench change {uuid.uuid4().hex}\n")


def change_dependencies(repo: Path, service: str) -> None:
    """A dependency change that does not touch torch (backend) / the dependency manifest (frontend)."""
    folder = repo / "services" / service
    if service == "backend":
        lock = folder / "requirements" / "app.lock"
        lock.write_text(lock.read_text() + "six==1.16.0\n")
    else:
        manifest = folder / "package.json"
        data = json.loads(manifest.read_text())
        data["benchChange"] = uuid.uuid4().hex
        manifest.write_text(json.dumps(data, indent=2) + "\n")


def restore(repo: Path, service: str) -> None:
    """The service folder as in the repository (the Dockerfile way's linked wheels stay)."""
    folder = repo / "services" / service
    for relative in (CODE_FILE[service], "requirements/app.lock", "package.json"):
        original = ROOT / "services" / service / relative
        if original.exists():
            shutil.copy2(original, folder / relative)


# ---------------------------------------------------------------------------------------------
# One way, one service, one repetition: every scenario in order


def fresh(way: Way, ctx: Context, *, change: bool) -> None:
    """A fresh runner: local build state wiped; the sources as built cold, or with a new code change."""
    restore(ctx.repo, ctx.service)
    way.reset()
    if change:
        append_line(ctx.repo, ctx.service)


def scenarios(way: Way, ctx: Context, relay: CountingRelay) -> dict[str, Measure]:
    """Run the seven scenarios in order; each measured with its own registry byte counts."""
    steps: list[tuple[str, Callable[[], None], bool]] = [
        ("cold: build + push", way.reset, True),
        ("warm, no change", lambda: None, False),
        ("warm, code-only change", lambda: append_line(ctx.repo, ctx.service), False),
        ("dependency change (not torch)", lambda: change_dependencies(ctx.repo, ctx.service), False),
        ("fresh runner, no change", lambda: fresh(way, ctx, change=False), False),
        ("fresh runner, code-only change", lambda: fresh(way, ctx, change=True), False),
        ("publish a code-only change", lambda: append_line(ctx.repo, ctx.service), True),
    ]
    results: dict[str, Measure] = {}
    for name, prepare, push in steps:
        prepare()
        relay.take()
        load = os.getloadavg()
        measure = way.build(push=push)
        measure.pushed_mb, measure.pulled_mb = (round(n / 1e6, 1) for n in relay.take())
        measure.loadavg = (round(load[0], 2), round(load[1], 2), round(load[2], 2))
        measure.seconds = round(measure.seconds, 2)
        measure.peak_rss_mb = round(measure.peak_rss_mb, 1)
        results[name] = measure
        state = "ok" if measure.ok else "FAILED"
        print(f"  {ctx.service:8} {way.name:10} {name:32} {measure.seconds:8.1f} s  {state} {measure.note[:90]}",
              file=sys.stderr, flush=True)  # fmt: skip
    return results


# ---------------------------------------------------------------------------------------------
# Images: bytes, what is in them, a smoke test


class _Counter:
    """A read-only stream that counts what is read from it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def image_bytes(reference: str) -> dict[str, object]:
    """Compressed bytes (manifest), uncompressed bytes (layers unpacked) and the bytes per bucket of paths."""
    ref = Reference.parse(reference)
    registry = Registry(REGISTRY, timeout=300.0)
    _, doc = image_manifest(registry, ref.repository, ref.digest or ref.tag or "latest")
    layers = doc["layers"]
    compressed = sum(int(layer["size"]) for layer in layers) + int(doc["config"]["size"])
    uncompressed = 0
    buckets: dict[str, int] = {}
    for layer in layers:
        with registry.open_blob(ref.repository, str(layer["digest"])) as blob:
            counter = _Counter(gzip.GzipFile(fileobj=blob))  # type: ignore[arg-type]
            with tarfile.open(fileobj=counter, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    if member.isfile():
                        name = "/" + member.name.lstrip("./")
                        bucket = next((b for b, part in BUCKETS if part in name), "everything else")
                        buckets[bucket] = buckets.get(bucket, 0) + member.size
            while counter.read(1 << 20):
                pass
            uncompressed += counter.count
    return {"reference": reference, "compressed": compressed, "uncompressed": uncompressed,
            "layers": len(layers), "files_by_path": buckets}  # fmt: skip


@contextlib.contextmanager
def container(env: dict[str, str], name: str, argv: list[str]) -> Iterator[str]:
    """A container on the host network, removed afterwards."""
    quiet([DOCKER, "rm", "-f", name], env)
    done = quiet([DOCKER, "run", "-d", "--name", name, "--network", "host", *argv], env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-500:])
    try:
        yield name
    finally:
        quiet([DOCKER, "rm", "-f", name], env)


def _http(url: str, body: dict[str, object] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def smoke(service: str, reference: str, bases: dict[str, str], docker_host: str) -> dict[str, object]:
    """The same smoke test on any image: health (with PostgreSQL), a prediction and the uid (backend)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")} | {"DOCKER_HOST": docker_host}
    local = reference.replace(reference.split("/", 1)[0], REGISTRY, 1)
    if quiet([DOCKER, "pull", "-q", local], env).returncode != 0:
        return {"ok": False, "why": f"cannot pull {local}"}
    tag = uuid.uuid4().hex[:6]
    if service == "frontend":
        with container(env, f"chbench-fe-{tag}", ["-e", "PORT=18080", "-e", "HOST=127.0.0.1", local]) as name:
            health = _wait(lambda: _http("http://127.0.0.1:18080/health"))
            uid = quiet([DOCKER, "inspect", "-f", "{{.Config.User}}", local], env).stdout.strip()
            return {"ok": health[0] == HTTP_OK and uid.startswith("10001"), "health": health[0], "user": uid,
                    "container": name}  # fmt: skip
    pg = ["-e", "POSTGRES_PASSWORD=bench", bases["postgres"], "-c", "port=15432", "-c", "listen_addresses=127.0.0.1"]
    quiet([DOCKER, "pull", "-q", bases["postgres"]], env)
    with container(env, f"chbench-pg-{tag}", pg):
        time.sleep(3)
        # The same server on a free port: cargohold's command is the image's entrypoint, the others' the CMD.
        app = ["-e", "DATABASE_URL=postgresql://postgres:bench@127.0.0.1:15432/postgres", "-e", "MIGRATE_ON_START=1",
               "--entrypoint", "uvicorn", local, "app.main:app", "--host", "127.0.0.1", "--port", "18000"]  # fmt: skip
        with container(env, f"chbench-be-{tag}", app) as name:
            began = time.monotonic()
            health = _wait(lambda: _http("http://127.0.0.1:18000/health"))
            start_up = round(time.monotonic() - began, 1)
            predict = _http("http://127.0.0.1:18000/predict", {"features": [5.1, 3.5, 1.4, 0.2]})
            uid = quiet([DOCKER, "exec", name, "id", "-u"], env).stdout.strip()
            ok = health[0] == HTTP_OK and predict[0] == HTTP_OK and uid == "10001"
            return {"ok": ok, "health": health[0], "predict": predict[0], "prediction": predict[1][:200], "uid": uid,
                    "seconds_to_healthy": start_up}  # fmt: skip


def _wait(probe: Callable[[], tuple[int, str]], seconds: float = 90) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    answer = probe()
    while answer[0] != HTTP_OK and time.monotonic() < deadline:
        time.sleep(1)
        answer = probe()
    return answer


# ---------------------------------------------------------------------------------------------
# The table


def spread(values: list[float], unit: str = "s") -> str:
    """Median, and min to max when there is more than one value."""
    if not values:
        return DASH
    text = f"{statistics.median(values):.1f} {unit}"
    if len(values) > 1:
        text += f" ({min(values):.1f}{DASH}{max(values):.1f})"
    return text


def ratio(a: list[float], b: list[float]) -> str:
    """The ratio of the medians."""
    if not a or not b or statistics.median(b) == 0:
        return DASH
    return f"{statistics.median(a) / statistics.median(b):.2f}{TIMES}"


@dataclass
class Results:
    """Everything one run measured."""

    machine: dict[str, object] = field(default_factory=dict)
    runs: dict[str, dict[str, dict[str, list[dict[str, object]]]]] = field(default_factory=dict)
    images: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    smoke: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)

    def values(self, service: str, way: str, scenario: str, key: str) -> list[float]:
        """The figure ``key`` of every successful repetition."""
        runs = self.runs.get(service, {}).get(way, {}).get(scenario, [])
        return [float(r[key]) for r in runs if r["ok"]]  # type: ignore[arg-type]

    def markdown(self) -> str:
        """The side-by-side tables, per service."""
        out = []
        for service in self.runs:
            out += [f"### {service}: wall seconds (median, min{DASH}max)", "",
                    ("| scenario | Dockerfile (docker 20.10) | raw Dagger | cargohold | cargohold/Dockerfile "
                     "| cargohold/raw Dagger |"), "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
            for scenario in SCENARIOS:
                v = {w: self.values(service, w, scenario, "seconds") for w in WAYS}
                out.append(f"| {scenario} | {spread(v['dockerfile'])} | {spread(v['raw-dagger'])} | "
                           f"{spread(v['cargohold'])} | {ratio(v['cargohold'], v['dockerfile'])} | "
                           f"{ratio(v['cargohold'], v['raw-dagger'])} |")  # fmt: skip
            out += ["", f"### {service}: client peak memory, MB pushed / MB pulled (medians)", "",
                    "| scenario | Dockerfile | raw Dagger | cargohold |", "|---|---:|---:|---:|"]  # fmt: skip
            for scenario in SCENARIOS:
                cells = []
                for w in WAYS:
                    rss, up, down = (self.values(service, w, scenario, k) for k in ("peak_rss_mb", "pushed_mb",
                                                                                     "pulled_mb"))  # fmt: skip
                    cells.append(DASH if not rss else f"{statistics.median(rss):.0f} MB; "
                                 f"{statistics.median(up):.1f} / {statistics.median(down):.1f}")  # fmt: skip
                out.append(f"| {scenario} | {' | '.join(cells)} |")
            out += ["", f"### {service}: the cold image", "",
                    "| way | compressed | uncompressed | layers | smoke test | compressed vs Dockerfile |",
                    "|---|---:|---:|---:|---|---:|"]  # fmt: skip
            docker_size = self.images.get(service, {}).get("dockerfile", {}).get("compressed")
            for w in WAYS:
                img = self.images.get(service, {}).get(w)
                if not img:
                    continue
                vs = f"{int(img['compressed']) / int(docker_size):.2f}{TIMES}" if docker_size else DASH  # type: ignore[call-overload]
                check = self.smoke.get(service, {}).get(w, {})
                out.append(f"| {w} | {int(img['compressed']) / 1e6:.1f} MB | {int(img['uncompressed']) / 1e6:.1f} MB"  # type: ignore[call-overload]
                           f" | {img['layers']} | {'pass' if check.get('ok') else check or DASH} | {vs} |")  # fmt: skip
            out += ["", f"### {service}: uncompressed bytes by path in the cold image", "",
                    "| path | Dockerfile | raw Dagger | cargohold |", "|---|---:|---:|---:|"]  # fmt: skip
            names = [b for b, _ in BUCKETS] + ["everything else"]
            for bucket in dict.fromkeys(names):
                cells = [self.images.get(service, {}).get(w, {}).get("files_by_path", {}).get(bucket, 0)  # type: ignore[union-attr]
                         for w in WAYS]  # fmt: skip
                sizes = " | ".join(f"{int(c) / 1e6:.1f} MB" for c in cells)
                out.append(f"| {bucket} | {sizes} |")
            out.append("")
        return "\n".join(out)


def measure_images(results: Results, docker_host: str, *, smoke_too: bool) -> None:
    """Bytes and smoke test of each cold image an earlier run pushed, where it has none (or a failed one)."""
    bases = find_base_images(REGISTRY)
    for service, ways in results.runs.items():
        for way, scenarios_run in ways.items():
            pushed = [r["reference"] for r in scenarios_run.get("cold: build + push", []) if r["ok"] and r["reference"]]
            if not pushed:
                continue
            image = str(pushed[-1]).replace(str(pushed[-1]).split("/", 1)[0], REGISTRY, 1)
            if way not in results.images.get(service, {}):
                results.images.setdefault(service, {})[way] = image_bytes(image)
            if smoke_too and not results.smoke.get(service, {}).get(way, {}).get("ok"):
                results.smoke.setdefault(service, {})[way] = smoke(service, image, bases, docker_host)


def with_gc_policy(engine_config: Path) -> None:
    """Give the fresh engines a garbage-collection policy of a healthy CI runner.

    By default the engine keeps a share of the disk free: on a disk that is already fuller than
    that (this machine's, at times), it drops its whole cache after every session, and each
    "warm" Dagger build would be a cold one. Docker 20.10's builder collects no garbage by default.
    """
    config = json.loads(engine_config.read_text())
    config["gc"] = GC_POLICY
    engine_config.write_text(json.dumps(config))


def machine_facts(docker_host: str) -> dict[str, object]:
    """The machine, the versions and the load when the run began."""
    env = os.environ | {"DOCKER_HOST": docker_host}
    docker = quiet([DOCKER, "version", "--format", "{{.Server.Version}}"], env).stdout.strip()
    dagger = quiet([str(ENGINE_BIN / "dagger"), "version"]).stdout.strip()
    commit = quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "memory": mem.split(":")[1].strip(), "kernel": platform.release(), "docker": docker,
            "dagger": dagger, "cargohold_commit": commit, "loadavg_at_start": os.getloadavg(),
            "engine_gc": GC_POLICY, "disk_free": shutil.disk_usage("/").free}  # fmt: skip


# ---------------------------------------------------------------------------------------------


def main() -> int:  # noqa: C901, PLR0912, PLR0915 - one straight script
    """Run every way, service and repetition; print the tables; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every scenario (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--docker-host", default="unix:///run/chbench/docker.sock",
                        help="the bench's Docker 20.10 daemon (see bench/README.md)")  # fmt: skip
    parser.add_argument("--no-smoke", action="store_true", help="skip the images' smoke tests")
    parser.add_argument("--render", type=Path, help="only print the tables of an earlier run's JSON")
    parser.add_argument("--measure-images", type=Path, help="measure (and smoke-test) an earlier run's cold images")
    args = parser.parse_args()
    if args.render or args.measure_images:
        path = args.render or args.measure_images
        saved = json.loads(path.read_text())
        results = Results(saved["machine"], saved["runs"], saved["images"], saved["smoke"])
        if args.measure_images:
            measure_images(results, args.docker_host, smoke_too=not args.no_smoke)
            path.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
        print(results.markdown())
        return 0
    services = [s for s in args.services.split(",") if s]
    ways = [w for w in args.ways.split(",") if w]
    if bad := [s for s in services if s not in SERVICES] + [w for w in ways if w not in WAYS]:
        parser.error(f"unknown service or way: {', '.join(bad)}")
    bases = find_base_images(REGISTRY)
    if len(bases) < len(BASES) * 2:
        parser.error("the local base images are missing: run ./dev bootstrap first")
    results = Results(machine=machine_facts(args.docker_host))
    run_id = time.strftime("%m%d%H%M")
    relay = CountingRelay(("127.0.0.1", RELAY_PORT), ("127.0.0.1", 5000))
    log_dir = Path(tempfile.mkdtemp(prefix="chbench-logs-"))
    print(f"logs: {log_dir}", file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="chbench-") as tmp, \
                second_host("chbench", Path(tmp), registry_port=RELAY_PORT, slot=1) as host:  # fmt: skip
            with_gc_policy(host.engine_config)
            for rep in range(args.reps):
                for service in services:
                    for way_name in ways:
                        work = Path(tmp) / f"{way_name}-{service}-{rep}"
                        ctx = Context(service, copy_repo(work / "repo"), f"chbench-{run_id}-{way_name}-r{rep}",
                                      work, log_dir / f"{way_name}-{service}-{rep}.log", host,
                                      f"127.0.0.1:{RELAY_PORT}", bases)  # fmt: skip
                        way: Way = {"dockerfile": lambda c: DockerfileWay(c, args.docker_host),
                                    "raw-dagger": RawDaggerWay, "cargohold": CargoholdWay}[way_name](ctx)  # fmt: skip
                        try:
                            measured = scenarios(way, ctx, relay)
                        finally:
                            way.close()
                        per_way = results.runs.setdefault(service, {}).setdefault(way_name, {})
                        for scenario, measure in measured.items():
                            per_way.setdefault(scenario, []).append(asdict(measure))
                        cold = measured["cold: build + push"]
                        if rep == args.reps - 1 and cold.ok and cold.reference:
                            image = cold.reference.replace(cold.reference.split("/", 1)[0], REGISTRY, 1)
                            results.images.setdefault(service, {})[way_name] = image_bytes(image)
                            if not args.no_smoke:
                                results.smoke.setdefault(service, {})[way_name] = smoke(
                                    service, image, bases, args.docker_host
                                )
                        shutil.rmtree(work, ignore_errors=True)
                        if args.json:  # after every way: a run cut short still leaves its numbers
                            args.json.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
    finally:
        relay.close()
    results.machine["loadavg_at_end"] = os.getloadavg()
    table = results.markdown()
    print(table)
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
