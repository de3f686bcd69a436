"""Image size benchmark: the backend's CPU image against the sum of its necessary parts.

Run from the repository root::

    .venv/bin/python bench/image_sizes.py [--skip-naive] [--cold] [--json out.json]

It bootstraps (engine, local registry, base images), then in one engine session:

1. builds ``backend:cpu`` with cargohold itself (as ``pipelines.py build --service backend`` does)
   into ``<local registry>/cargohold-bench`` and reads its image facts;
2. measures the parts the image cannot do without, independently of cargohold's layers: the
   runtime base image (its manifest's layer sizes), the torch CPU wheel, and the wheels of the
   other runtime dependencies (``pip download`` of the lockfile). Wheels are compressed archives,
   so their file sizes compare with compressed layer sizes;
3. unless ``--skip-naive``, builds the same service the way a single-stage Dockerfile does
   (compiler base, the whole folder copied, PyPI's default torch, which is the CUDA build, as
   root, no cache mount) and reads its facts as a CPU runtime image.

It prints a Markdown report on stdout (progress goes to stderr) and, with ``--json``, writes
the numbers as JSON. cargohold reuses what it built before (its registry cache of stages and
images, and the engine's own cache), so a second run measures a reuse; ``--cold`` measures a
build from nothing (see ``cold_namespace`` and ``cache_buster``).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
import dagger
from dagger import dag

from cargohold.bootstrap import bootstrap
from cargohold.build import build_all, jobs_for
from cargohold.config import CONFIG_FILE, OVERRIDES_VAR, Config, load_config
from cargohold.engine import resolve, session
from cargohold.host_inputs import check_contexts, host_services, keys_for, provenance, service_inputs
from cargohold.image_checks import image_facts
from cargohold.image_facts import ImageFacts, LayerFacts, amd64_manifest, format_size, read_image_facts
from cargohold.keys import BuildTarget
from cargohold.local_registry import local_registry_address
from cargohold.reference import Reference
from cargohold.registry import DOCKER_LIST, OCI_INDEX, Registry
from cargohold.reuse import BuildRun
from cargohold.trust import bundle_file, read_bundle, with_ca_bundle, without_ca_bundle

log = logging.getLogger("bench")

ROOT: Final = Path(__file__).resolve().parents[1]
SERVICE: Final = "backend"
VARIANT: Final = "cpu"
NAMESPACE: Final = "cargohold-bench"
NAIVE_TAG: Final = "backend-naive:cuda"
TIMES: Final = "\N{MULTIPLICATION SIGN}"
GOAL: Final = 1.15  # the cargohold image may weigh at most this many times the sum of its parts
NAIVE_BUILD_LIMIT: Final = 40 * 60  # seconds; PyPI's CUDA torch is several GB
# PyTorch's CPU index is out of reach here: torch comes from the shared wheelhouse, its dependencies
# from PyPI, as in the tests.
WHEELHOUSE_OVERRIDE: Final = (
    'services.backend.variants.cpu = { find-links = "../shared/wheels", index-url = "https://pypi.org/simple" }'
)
# The wheels pip would pick for CPython 3.11 on Debian bookworm (glibc 2.36), best first.
WHEEL_PLATFORMS: Final = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)), "manylinux2014_x86_64")
NAIVE_VENV: Final = "/opt/venv"
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- what is measured --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One layer of an image: its two sizes, the step that made it, and its largest file."""

    compressed: int
    uncompressed: int
    created_by: str
    largest_file: str  # says what the layer holds where created_by does not ("Directory.withDirectory")


@dataclass(frozen=True)
class Stage:
    """One stage of a cargohold build, from its cache report."""

    name: str
    outcome: str  # built, hit (imported from the registry cache), reused, skipped
    seconds: float


@dataclass(frozen=True)
class ImageResult:
    """A built and pushed image: where, how big, how long it took, what the facts report found."""

    reference: str
    compressed: int
    uncompressed: int
    build_seconds: float  # from the first build step to the pushed image
    layers: tuple[Layer, ...]
    findings: tuple[str, ...]
    outcome: str = "built"  # or "reused": cargohold found the image for identical inputs
    stages: tuple[Stage, ...] = ()


@dataclass(frozen=True)
class Parts:
    """The necessary parts of the image, each measured compressed, outside cargohold."""

    base_reference: str
    base_image: int  # (a) the runtime base image's layers, from its manifest
    torch_wheel_file: str
    torch_wheel: int  # (b) the torch CPU wheel
    other_wheel_count: int
    other_wheels: int  # (c) the other runtime dependencies' wheels

    @property
    def total(self) -> int:
        """(a) + (b) + (c)."""
        return self.base_image + self.torch_wheel + self.other_wheels


@dataclass(frozen=True)
class Report:
    """Everything the benchmark measured."""

    date: str
    engine_version: str
    cold: bool
    cargohold: ImageResult
    parts: Parts
    naive: ImageResult | None  # None when skipped or failed
    naive_note: str  # why there is no naive result, or what to know about it

    @property
    def ratio(self) -> float:
        """The cargohold image's compressed size over the sum of its parts."""
        return self.cargohold.compressed / self.parts.total

    @property
    def naive_factor(self) -> float | None:
        """How many times larger (compressed) the naive image is than cargohold's."""
        return self.naive.compressed / self.cargohold.compressed if self.naive else None


def image_result(facts: ImageFacts, reference: str, seconds: float, run: BuildRun | None = None) -> ImageResult:
    """The benchmark's view of an image facts report (and of cargohold's build record, when given)."""
    layers = tuple(_layer(lf) for lf in facts.layers)
    findings = tuple(f"{f.kind.value}: {f.message}" for f in facts.findings)
    outcome = run.images[0].outcome if run else "built"
    stages = tuple(Stage(r.stage, r.outcome.value, round(r.seconds, 1)) for r in run.records) if run else ()
    return ImageResult(
        reference, facts.compressed_size, facts.uncompressed_size, round(seconds, 1), layers, findings, outcome, stages
    )


def _layer(facts: LayerFacts) -> Layer:
    largest = facts.largest_paths[0][0] if facts.largest_paths else ""
    return Layer(facts.compressed_size, facts.uncompressed_size, facts.created_by, largest)


# ---- (1) the cargohold image -------------------------------------------------------------------


async def build_with_cargohold(config: Config, bundle: dagger.File | None, namespace: str) -> ImageResult:
    """Build and push ``backend:cpu`` exactly as ``pipelines.py build --service backend`` does."""
    wanted = [BuildTarget(SERVICE, VARIANT)]
    check_contexts(config, ROOT, wanted)
    hosts = host_services(config, ROOT, wanted)
    registry = f"{local_registry_address()}/{namespace}"
    jobs = jobs_for(
        config,
        wanted,
        service_inputs(config, hosts),
        keys_for(config, hosts),
        registry=registry,
        ca_bundle=bundle,
        provenance=provenance(config, ROOT),
        cache_registry=config.project.cache if namespace == NAMESPACE else None,  # a cold run: its own cache
    )
    log.info("building %s:%s with cargohold → %s", SERVICE, VARIANT, registry)
    began = time.monotonic()
    run = await build_all(jobs)
    seconds = time.monotonic() - began
    [image] = run.images
    log.info("%s in %.0f s: %s", image.outcome, seconds, image.reference)
    return image_result(await image_facts(config, image), image.reference, seconds, run)


# ---- (2) the sum of the necessary parts --------------------------------------------------------


def base_image_size(reference: str) -> int:
    """The compressed size of an image: the sum of its (linux/amd64) manifest's layer sizes."""
    ref = Reference.parse(reference)
    registry = Registry(ref.registry)
    manifest = json.loads(registry.get_manifest(ref.repository, ref.digest or ref.tag or "latest"))
    if manifest.get("mediaType") in {OCI_INDEX, DOCKER_LIST} or "manifests" in manifest:
        manifest = json.loads(registry.get_manifest(ref.repository, amd64_manifest(manifest, ref.repository)))
    return sum(int(layer["size"]) for layer in manifest["layers"])


def pinned(requirements: Path) -> list[tuple[str, str]]:
    """The ``name==version`` pins of a requirements file, comments and blank lines left out."""
    pins = []
    for line in requirements.read_text().splitlines():
        requirement = line.partition("#")[0].strip()
        if "==" in requirement:
            name, _, version = requirement.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def torch_wheel(config: Config) -> Path:
    """The wheel the CPU variant installs: its heavy pin, found in its wheelhouse."""
    svc = config.service(SERVICE)
    _, variant = svc.variant(VARIANT)
    heavy = variant.heavy or svc.python_settings.heavy
    if heavy is None or variant.find_links is None:
        raise SystemExit(f"error: {SERVICE}:{VARIANT} has no heavy requirements from a wheelhouse to measure")
    name, version = pinned(ROOT / svc.path / heavy)[0]  # torch first; its own dependencies after it
    wheels = sorted((ROOT / variant.find_links).glob(f"{name}-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"error: no {name}-{version} wheel in {ROOT / variant.find_links}")
    return wheels[0]


def runtime_wheels_size(pins: list[str]) -> tuple[int, int]:
    """How many wheels ``pins`` are for CPython 3.11 on bookworm, and their total size (from PyPI)."""
    platforms = [f"--platform={platform}" for platform in WHEEL_PLATFORMS]
    env = {k: v for k, v in os.environ.items() if k not in {"PIP_FIND_LINKS", "PIP_NO_INDEX"}}  # PyPI only
    with tempfile.TemporaryDirectory(prefix="bench-wheels-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version=3.11", "--implementation=cp", "--abi=cp311", *platforms]
        subprocess.run([*command, *pins, "-d", folder], check=True, env=env)
        wheels = list(Path(folder).glob("*.whl"))
        return len(wheels), sum(wheel.stat().st_size for wheel in wheels)


def necessary_parts(config: Config) -> Parts:
    """(a) the runtime base image, (b) the torch CPU wheel, (c) the other runtime wheels."""
    wheel = torch_wheel(config)
    svc = config.service(SERVICE)
    log.info("downloading the wheels of %s and torch's own dependencies to weigh them", svc.python_settings.lockfile)
    heavy = svc.python_settings.heavy or "requirements/torch.txt"
    pins = pinned(ROOT / svc.path / svc.python_settings.lockfile) + pinned(ROOT / svc.path / heavy)[1:]
    count, others = runtime_wheels_size([f"{name}=={version}" for name, version in pins])
    base = config.images.python
    return Parts(base, base_image_size(base), wheel.name, wheel.stat().st_size, count, others)


# ---- (3) the naive single-stage image ----------------------------------------------------------


def naive_container(config: Config, bundle: dagger.File | None) -> dagger.Container:
    """The usual single-stage Dockerfile, as Dagger calls: compiler base, everything copied, PyPI torch, root.

    The Debian-built ``python-build`` base has no system pip (upstream ``python:3.11`` has one in
    /usr/local); a venv on PATH stands in for it. No cache mount and no ``--no-cache-dir``: whatever
    pip caches stays in the layer, as in a plain ``RUN pip install``.
    """
    svc = config.service(SERVICE)
    name, version = pinned(ROOT / svc.path / (svc.python_settings.heavy or "requirements/torch.txt"))[0]
    torch = f"{name}=={version.partition('+')[0]}"  # PyPI's default build: CUDA on Linux
    return (
        dag.container()
        .from_(config.images.python_build)
        .with_(with_ca_bundle(bundle))
        .with_exec(["python3", "-m", "venv", NAIVE_VENV])
        .with_env_variable("PATH", f"{NAIVE_VENV}/bin:{DEFAULT_PATH}")
        .with_directory("/app", dag.host().directory(str(ROOT / svc.path)))
        .with_workdir("/app")
        .with_exec(["pip", "install", torch])
        .with_exec(["pip", "install", "-r", svc.python_settings.lockfile])
        .with_(without_ca_bundle(bundle))
        .with_exposed_port(svc.port)
        .with_entrypoint(list(svc.command))
    )


async def build_naive(config: Config, bundle: dagger.File | None) -> tuple[ImageResult | None, str]:
    """Build, push and read the naive image; on failure or timeout, None and what happened."""
    ctr = naive_container(config, bundle)
    log.info("building the naive image (PyPI torch with CUDA; limit %d min)", NAIVE_BUILD_LIMIT // 60)
    began = time.monotonic()
    try:
        with anyio.move_on_after(NAIVE_BUILD_LIMIT) as scope:
            await ctr.sync()
    except dagger.ExecError as e:
        tail = " | ".join(e.stderr.strip().splitlines()[-5:])
        return None, f"`{' '.join(e.command)}` exited with {e.exit_code} after {time.monotonic() - began:.0f} s: {tail}"
    if scope.cancelled_caught:
        return None, f"the build did not finish within {NAIVE_BUILD_LIMIT // 60} minutes; stopped"
    built = time.monotonic()
    reference = await ctr.publish(f"{local_registry_address()}/{NAMESPACE}/{NAIVE_TAG}")
    seconds = time.monotonic() - began
    log.info("naive image built in %.0f s, pushed in %.0f s: %s", built - began, seconds - (built - began), reference)
    ref = Reference.parse(reference)
    read = functools.partial(
        read_image_facts, Registry(ref.registry), ref.repository, ref.digest or "cuda", variant=VARIANT, role="runtime"
    )
    facts = await anyio.to_thread.run_sync(read)
    note = f"build {built - began:.0f} s + push {seconds - (built - began):.0f} s"
    return image_result(facts, reference, seconds), note


# ---- the run -----------------------------------------------------------------------------------


def cold_namespace(*, cold: bool) -> str:
    """Where cargohold publishes: a namespace of this run's own when ``cold``.

    cargohold looks up its stage cache and the final image (by content key) under the namespace
    it publishes to; an empty namespace has neither, so every stage is built and exported.
    """
    return f"{NAMESPACE}/cold-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}" if cold else NAMESPACE


def cache_buster(pem: str | None, *, cold: bool) -> str | None:
    """The CA bundle, with a comment unique to this run when ``cold``.

    Every build step that downloads mounts the bundle, so a changed bundle is a changed input:
    the engine redoes those steps instead of taking them from its own cache. PEM readers skip
    text between certificates. Without a bundle there is nothing to change, and the engine may
    reuse steps. (pip's wheel cache volume stays: it is part of how cargohold builds.)
    """
    if not cold or pem is None:
        return pem
    return f"{pem}# cargohold bench run {time.time_ns()}\n"


async def measure(config: Config, *, skip_naive: bool, cold: bool) -> Report:
    """Parts first (no engine), then one engine session for both builds."""
    parts = necessary_parts(config)
    pem = cache_buster(read_bundle(config.ca_bundle_paths()), cold=cold)
    if cold and pem is None:
        log.warning("--cold needs a CA bundle to vary; build steps may come from the engine's cache")
    async with session(resolve(start=True)) as version:
        bundle = bundle_file(pem)
        ours = await build_with_cargohold(config, bundle, cold_namespace(cold=cold))
        naive, note = (None, "skipped (--skip-naive)") if skip_naive else await build_naive(config, bundle)
    date = datetime.now(UTC).date().isoformat()
    return Report(date, version, cold, ours, parts, naive, note)


# ---- the report --------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    """The whole report as Markdown: sizes, parts and ratio, then each image's layers and findings."""
    lines = [*summary_table(report), "", *parts_table(report)]
    images = [("cargohold image", report.cargohold)] + ([("naive image", report.naive)] if report.naive else [])
    for title, image in images:
        lines += ["", f"Layers, {title} `{image.reference}`:", "", *layer_table(image), ""]
        lines += findings_list(title, image)
    return "\n".join(lines)


def summary_table(report: Report) -> list[str]:
    """One row per image: sizes and build time."""
    rows = [
        "| image | compressed | uncompressed | build + push | compressed vs cargohold |",
        "|---|---:|---:|---:|---:|",
    ]
    rows.append(_image_row(f"cargohold `{SERVICE}:{VARIANT}` ({report.cargohold.outcome})", report.cargohold, 1.0))
    naive = "naive single-stage, PyPI torch (CUDA)"
    if report.naive and report.naive_factor:
        rows.append(_image_row(f"{naive} ({report.naive_note})", report.naive, report.naive_factor))
    else:
        rows.append(f"| {naive} | — | — | — | {report.naive_note} |")
    cache = "cold: an empty cargohold cache and every engine step redone" if report.cold else "what earlier runs left"
    stages = ", ".join(f"{s.name} {s.outcome} {s.seconds:.0f} s" for s in report.cargohold.stages)
    return [
        *rows,
        "",
        f"Engine {report.engine_version}, {report.date}; caches: {cache}. cargohold stages: {stages}.",
    ]


def _image_row(name: str, image: ImageResult, factor: float) -> str:
    sizes = f"{format_size(image.compressed)} | {format_size(image.uncompressed)}"
    return f"| {name} | {sizes} | {image.build_seconds:.0f} s | {factor:.1f}{TIMES} |"


def parts_table(report: Report) -> list[str]:
    """The necessary parts, their sum, and the ratio against the goal."""
    parts = report.parts
    verdict = "met" if report.ratio <= GOAL else "NOT met"
    return [
        "| necessary part | compressed |",
        "|---|---:|",
        f"| (a) runtime base image `{parts.base_reference}` | {format_size(parts.base_image)} |",
        f"| (b) torch CPU wheel `{parts.torch_wheel_file}` | {format_size(parts.torch_wheel)} |",
        f"| (c) other runtime wheels ({parts.other_wheel_count}, the lockfile's) | {format_size(parts.other_wheels)} |",
        f"| sum (a + b + c) | {format_size(parts.total)} |",
        f"| **cargohold image / sum** | **{report.ratio:.3f}{TIMES}** (goal ≤ {GOAL}{TIMES}: {verdict}) |",
    ]


def layer_table(image: ImageResult) -> list[str]:
    """One row per layer, in image order."""
    rows = ["| # | compressed | uncompressed | created by | largest file |", "|---:|---:|---:|---|---|"]
    for number, layer in enumerate(image.layers, start=1):
        step = " ".join(layer.created_by.split())[:100].replace("|", "\\|") or "?"
        sizes = f"{format_size(layer.compressed)} | {format_size(layer.uncompressed)}"
        largest = f"`{layer.largest_file}`" if layer.largest_file else "—"
        rows.append(f"| {number} | {sizes} | `{step}` | {largest} |")
    return rows


def findings_list(title: str, image: ImageResult) -> list[str]:
    """The facts report's findings, one line each."""
    return [f"Findings, {title}:", "", *(f"- {line}" for line in image.findings or ("none",))]


def as_json(report: Report) -> dict[str, Any]:
    """The report with its derived numbers, for ``--json``."""
    data = asdict(report)
    data["parts"]["total"] = report.parts.total
    data["ratio"] = round(report.ratio, 4)
    data["goal"] = GOAL
    data["naive_factor"] = round(report.naive_factor, 2) if report.naive_factor else None
    return data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--skip-naive", action="store_true", help="do not build the naive CUDA single-stage image")
    parser.add_argument(
        "--cold", action="store_true", help="build from nothing: empty cargohold cache, no engine cache"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Bootstrap, measure, report."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv)
    os.environ.setdefault(OVERRIDES_VAR, WHEELHOUSE_OVERRIDE)
    for line in bootstrap().lines():
        log.info("%s", line)
    config = load_config(ROOT / CONFIG_FILE)  # after the bootstrap: it points the images at the local bases
    report = anyio.run(functools.partial(measure, config, skip_naive=args.skip_naive, cold=args.cold))
    sys.stdout.write(markdown(report) + "\n")
    if args.json:
        args.json.write_text(json.dumps(as_json(report), indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
