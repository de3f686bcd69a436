"""The command line (client mode): ``python pipelines.py <command>``.

Each command opens one Dagger session and calls the same ``Cargohold``
methods that ``dagger call`` runs. Errors a user can fix exit with code 2 and
one line; a failing step inside the engine shows the tool's own stderr.

The Dagger SDK takes seconds to import, so it is imported only where a session
opens: this module's own imports stay free of it, and a command that needs no
engine (``plan``, ``validate``, ``report``, a ``build`` that reuses every
image, a ``ci`` that finds every image and check already verified) never
loads it. tests/unit/test_lazy_sdk.py holds that line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import anyio
import typer

from cargohold import engine as engines
from cargohold import interrupts, progress, telemetry
from cargohold.bootstrap import BootstrapReport, bootstrap, ready_for_lookups, use_local_base_images
from cargohold.cache_report import report_json, report_lines
from cargohold.ci_run import CiOptions, CiRun, checked_marker, integration_marker, verified_run, write_junit
from cargohold.config import CONFIG_FILE, Config, ContextConfig, load_config
from cargohold.errors import CargoholdError, ConfigError
from cargohold.host_inputs import check_contexts, host_services, keys_for, provenance, service_inputs
from cargohold.image_checks import image_facts, size_against_budget
from cargohold.image_facts import gate_problems
from cargohold.keys import BuildTarget
from cargohold.local_registry import local_registry_address
from cargohold.plan import Plan, decide, lookup_all, references_for
from cargohold.reference import Reference
from cargohold.registry import Credentials, Registry
from cargohold.report import load_trace, markdown
from cargohold.report_html import html as report_html
from cargohold.results import TaskKind, failed, junit_xml, parse_only, summary_lines
from cargohold.reuse import BuildRun, PushedImage, reuse_all
from cargohold.source_tree import host_tree
from cargohold.targets import targets

if TYPE_CHECKING:  # these import the Dagger SDK: at run time, only inside what opens a session
    import dagger

    from cargohold.build import Job, Provenance
    from cargohold.publish import ReleaseImage
    from cargohold.smoke import SmokeReport

log = logging.getLogger("cargohold")
T = TypeVar("T")

app = typer.Typer(
    name="pipelines.py",
    help="cargohold: build, cache, test and publish the container images of a monorepo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
engine_app = typer.Typer(help="Find, start, inspect and stop the Dagger engine.", no_args_is_help=True)
app.add_typer(engine_app, name="engine")


@dataclass
class Options:
    """The global options, set by the callback before a command runs."""

    config: Path = Path(CONFIG_FILE)
    verbose: bool = False


OPTIONS = Options()


@app.callback()
def _global(
    config: Annotated[Path, typer.Option(help="the build description to use")] = Path(CONFIG_FILE),
    *,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show the engine's own progress output and each registry retry")
    ] = False,
) -> None:
    OPTIONS.config = config
    OPTIONS.verbose = verbose
    if verbose:
        logging.getLogger("cargohold").setLevel(logging.DEBUG)


@app.command()
def ci(
    service: Annotated[
        list[str] | None, typer.Option(help="check only this service (repeatable; default: all)")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="run only these tasks: lint, test, build, integration (repeatable)")
    ] = None,
    *,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="stop at the first failure")] = False,
    junit: Annotated[Path, typer.Option(help="where to write the JUnit XML of every task")] = Path("reports/junit.xml"),
    cache_report: Annotated[Path | None, typer.Option(help="also write the cache report here, as JSON")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="where to write the run's trace (OTLP/JSON); default: beside the JUnit XML")
    ] = None,
) -> None:
    """The main job: lint, unit tests and builds of every service side by side, then integration tests.

    Sets up what is missing first (engine, registry, base images). Services whose image already exists
    for identical inputs are skipped green; when nothing needs to run, no engine is started.
    """
    config = _load()
    options = CiOptions(parse_only(only), fail_fast=fail_fast)
    wanted = [t for name in (service or list(config.services)) for t in targets(config, name, None)]
    root = OPTIONS.config.resolve().parent
    check_contexts(config, root, wanted)  # silent when clean; a dirty context fails here, naming the paths
    ready_for_lookups()
    trace = trace or junit.with_name(telemetry.DEFAULT_TRACE.name)  # the run's reports stay together
    with _observed(trace, _expected(config, wanted, options)):
        planned = make_plan(config, wanted, None)
        pending = _checks_pending(planned, options) or _integration_pending(_load(), planned, options, root)
        if planned.all_reused and not pending:  # everything already built and verified: no engine
            run = anyio.run(_ci_without_engine, planned, options)
        else:
            bootstrap()
            config = _load()
            run = _run_in_session(lambda: _ci(config, wanted, options))
        telemetry.finish_run(run.results)
    _finish_ci(run, junit, cache_report)
    _step_summary(trace)
    if failed(run.results):
        raise typer.Exit(1)


@contextlib.contextmanager
def _observed(trace: Path, expected: list[str]) -> Iterator[None]:
    """The run's trace (written to ``trace``) and its progress view: live on a terminal, plain lines elsewhere."""
    live = progress.terminal(sys.stderr) and not OPTIONS.verbose  # -v shows the engine's own output instead
    with progress.progress_view(expected, live=live) as view, telemetry.traced_run("ci", trace, {}, [view]):
        yield


def _expected(config: Config, wanted: list[BuildTarget], options: CiOptions) -> list[str]:
    """The spans a run will start, in order: each service's checks, then integration."""
    names = [f"check {t.service}:{k.value}" for t in wanted for k in options.per_target()]
    if TaskKind.INTEGRATION in options.only and config.integration is not None:
        names.append("check integration")
    return names


def _step_summary(trace: Path) -> None:
    """The run's Markdown summary, appended to ``$GITHUB_STEP_SUMMARY`` when CI sets it."""
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(summary).open("a") as out:
            out.write(markdown(load_trace(trace)))


@app.command()
def report(
    trace: Annotated[Path, typer.Option(help="the trace file of a run")] = telemetry.DEFAULT_TRACE,
    html: Annotated[Path, typer.Option(help="where to write the HTML page")] = Path("reports/report.html"),
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="also write the Markdown summary here ('-': print it)")
    ] = None,
) -> None:
    """The report of a run, from its trace file: a self-contained HTML page and a Markdown summary.

    The page has a timeline of the run (tasks on lanes, cache hits) and, per image, its size by layer
    and its largest paths against its budget, with the findings. Needs no engine.
    """
    loaded = load_trace(trace)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(report_html(loaded))
    typer.echo(f"HTML report: {html}", err=True)
    if markdown_file is not None and str(markdown_file) == "-":
        typer.echo(markdown(loaded), nl=False)
    elif markdown_file is not None:
        markdown_file.parent.mkdir(parents=True, exist_ok=True)
        markdown_file.write_text(markdown(loaded))
        typer.echo(f"Markdown summary: {markdown_file}", err=True)


def _checks_pending(planned: Plan, options: CiOptions) -> bool:
    """True when some image exists but its lint and unit tests never passed for these inputs."""
    if not {TaskKind.LINT, TaskKind.TEST} & options.only:
        return False
    markers = [
        str(checked_marker(planned.cache_registry, t.service, t.variant, k.image)) for t, k in planned.keys.items()
    ]
    return not all(lookup_all(markers).values())


def _integration_pending(config: Config, planned: Plan, options: CiOptions, root: Path) -> bool:
    """True when the integration suite must run: selected, configured, and not passed for these images."""
    if TaskKind.INTEGRATION not in options.only or config.integration is None:
        return False
    tree = host_tree(root / config.integration.path, ContextConfig())
    keys = {t.service: k.image for t, k in planned.keys.items()}
    marker = integration_marker(planned.cache_registry, tree, keys, config)
    return lookup_all([str(marker)])[str(marker)] is False


async def _ci_without_engine(planned: Plan, options: CiOptions) -> CiRun:
    return await verified_run(_load(), await reuse_all(planned.keys, planned.registry), options)


async def _ci(config: Config, wanted: list[BuildTarget], options: CiOptions) -> CiRun:
    from dagger import dag  # noqa: PLC0415 - the SDK (see the module docstring)

    from cargohold.pipeline import IntegrationInputs, run_ci  # noqa: PLC0415

    root = OPTIONS.config.resolve().parent
    jobs, bundle = _host_jobs(config, wanted)
    suite = None
    if config.integration is not None:
        folder = root / config.integration.path
        suite = IntegrationInputs(dag.host().directory(str(folder)), host_tree(folder, ContextConfig()))
    return await run_ci(config, jobs, options, suite, bundle)


def _finish_ci(run: CiRun, junit: Path, cache_report: Path | None) -> None:
    """Print the results, write the reports, and exit non-zero when anything failed."""
    _print_lines(report_lines(run.records))
    if cache_report is not None:
        cache_report.write_text(json.dumps(report_json(run.records), indent=2) + "\n")
    write_junit(junit, junit_xml(run.results))
    for name, xml in run.junit_files.items():
        write_junit(junit.with_name(f"{name}.xml"), xml)
    _print_lines(summary_lines(run.results), err=False)
    typer.echo(f"JUnit XML: {junit}", err=True)


@app.command(name="bootstrap")
def bootstrap_command() -> None:
    """Only the set-up: engine, local registry, base images; says what it reused."""
    report: BootstrapReport = bootstrap()
    _print_lines(report.lines())


@app.command()
def smoke(
    package: Annotated[
        str | None, typer.Option(help="the PyPI requirement to install (default: a small pinned one)")
    ] = None,
) -> None:
    """Build from the Python base, pip-install from PyPI, publish, pull back by digest, check."""
    from cargohold.smoke import DEFAULT_PACKAGE  # noqa: PLC0415 - the SDK (see the module docstring)

    _load()
    bootstrap()
    _print_smoke(_run_in_session(lambda: _smoke(_load(), package or DEFAULT_PACKAGE)))


@app.command()
def build(
    service: Annotated[str | None, typer.Option(help="build only this service (default: all)")] = None,
    variant: Annotated[str | None, typer.Option(help="build this variant (default: each service's default)")] = None,
    cache_report: Annotated[Path | None, typer.Option(help="also write the cache report here, as JSON")] = None,
) -> None:
    """Build the services' runtime images and push them to the registry (the local one by default)."""
    config = _load()
    wanted = targets(config, service, variant)  # bad names fail here, before anything starts
    for report in check_contexts(config, OPTIONS.config.resolve().parent, wanted):
        typer.echo(report.lines()[0], err=True)
    ready_for_lookups(engine_required=False)  # identical inputs are reused even where no engine exists
    planned = make_plan(config, wanted, None)
    if planned.all_reused:  # identical inputs everywhere: registry calls only, no engine
        run = anyio.run(reuse_all, planned.keys, planned.registry)
    else:
        bootstrap()
        config = _load()
        run = _run_in_session(lambda: _build(config, wanted))
    _print_lines(report_lines(run.records))
    if cache_report is not None:
        cache_report.write_text(json.dumps(report_json(run.records), indent=2) + "\n")
    over = [f"{image.service}:{image.variant}" for image in run.images if not _report_image(config, image)]
    if over:
        typer.echo(f"error: failed its image gate: {', '.join(over)} (budget and findings above)", err=True)
        raise typer.Exit(1)


def _secret_uri(token: str | None, username: str | None) -> str | None:
    """``env:NAME``/``file:PATH`` → Dagger's secret URI, checked for presence now; None without a token."""
    if token is None:
        return None
    kind, _, where = token.partition(":")
    present = {
        "env": lambda: bool(os.environ.get(where)),
        "file": lambda: Path(where).is_file() and Path(where).stat().st_size > 0,
    }
    if kind not in present or not where:
        # Never echo the value: it may be a token pasted where its location belongs.
        raise ConfigError(
            ["--token: say where the token is, as env:NAME or file:PATH, never the token itself"], "command line"
        )
    if not present[kind]():
        raise ConfigError([f"--token {kind}:{where}: missing or empty; set it before publishing"], "command line")
    if not username:
        raise ConfigError(
            ["--token needs --username (for GHCR: the user or organisation that owns the token)"], "command line"
        )
    return f"{kind}://{where}"


async def _engine_side(
    config: Config,
    prepare: Callable[[Credentials | None], list[ReleaseImage]],
    release: tuple[str, Provenance],
    secret_uri: str | None,
    username: str | None,
) -> tuple[list[ReleaseImage], Credentials | None]:
    """What needs the engine: the token as a dagger.Secret from Dagger's own provider, and each image's SBOM.

    The token's plaintext goes only to the registry client: never to a log, an image or a report. The
    images are prepared with it (``prepare``): the release registry's existing tags may need it.
    """
    from dagger import dag  # noqa: PLC0415 - the SDK (see the module docstring)

    from cargohold.main import image_sbom  # noqa: PLC0415

    bootstrap()
    config = _load()  # again: the bootstrap may point the image references at local base images
    async with engines.session(engines.resolve(start=True)):
        credentials = None
        if secret_uri is not None:
            # .strip(): a token file usually ends with a newline, which is not part of the token
            credentials = Credentials(username or "", (await dag.secret(secret_uri).plaintext()).strip())
        images = await anyio.to_thread.run_sync(prepare, credentials)
        root = OPTIONS.config.resolve().parent
        with_sboms = []
        for image in images:
            folder = dag.host().directory(str(root / config.service(image.service).path))
            sbom = await image_sbom(config, image, folder, release[0], release[1].committed)
            with_sboms.append(replace(image, sbom=sbom))
    return with_sboms, credentials


def _release_registry(to: str, credentials: Credentials | None) -> Registry:
    return Registry(Reference.parse(f"{to}/x").registry, timeout=120.0, credentials=credentials)


def _require_checked(planned: Plan) -> None:
    """Publish only images ci built and checked for exactly these inputs."""
    markers = {
        str(checked_marker(planned.cache_registry, t.service, t.variant, k.image)): t for t, k in planned.keys.items()
    }
    found = lookup_all(list(markers))
    missing = [t.label for ref, t in markers.items() if not found[ref]]
    missing += [t.target.label for t in planned.targets if t.action != "reuse" and t.target.label not in missing]
    if missing:
        msg = f"not built and checked by ci for these inputs: {', '.join(sorted(set(missing)))}"
        raise CargoholdError(msg, "run './dev ci' first; publish promotes what ci verified, it never builds")


def _report_image(config: Config, image: PushedImage) -> bool:
    """Print what a person wants to know of one image; False when it is over its budget.

    A built image gets the whole facts report. A reused one was reported when it was built: its
    size is checked against today's budget from the manifest alone, so a fresh runner lists no layer.
    """
    typer.echo(f"{image.service}:{image.variant} {image.outcome} {image.reference}")
    if image.outcome == "built":
        fact = anyio.run(image_facts, config, image)
        _print_lines(fact.lines())
        return not gate_problems(fact, config.service(image.service).allow_findings)
    size, budget = anyio.run(size_against_budget, config, image)
    verdict = "no budget" if budget is None else f"budget {budget / 1e6:.1f} MB: {'OVER' if size > budget else 'OK'}"
    _print_lines([f"  {size / 1e6:.1f} MB compressed, {verdict} (facts as reported when it was built)"])
    return budget is None or size <= budget


@app.command()
def plan(
    service: Annotated[str | None, typer.Option(help="plan only this service (default: all)")] = None,
    variant: Annotated[str | None, typer.Option(help="this variant (default: each service's default)")] = None,
    since: Annotated[
        str | None, typer.Option(help="also say what changed since this git ref, e.g. origin/main")
    ] = None,
    *,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON, with a CI matrix")] = False,
) -> None:
    """What a build would build, reuse or take from the cache, and why. Needs no engine."""
    config = _load()
    wanted = targets(config, service, variant)
    result = make_plan(config, wanted, since)
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_lines(result.lines(), err=False)


@app.command("prune-cache")
def prune_cache_command(
    older_than_days: Annotated[float | None, typer.Option(help="delete cache entries older than this")] = None,
    keep: Annotated[int | None, typer.Option(help="keep only this many newest entries per service and variant")] = None,
    *,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be deleted, delete nothing")] = False,
) -> None:
    """Delete stage cache entries by age or count (storage returns with the registry's garbage collection)."""
    from cargohold.retention import prune_cache  # noqa: PLC0415

    config = _load()
    namespace = config.project.cache or run_registry(config)
    host = Reference.parse(f"{namespace}/x").registry
    older_than = dt.timedelta(days=older_than_days) if older_than_days is not None else None
    report = prune_cache(Registry(host), namespace, older_than=older_than, keep_newest=keep, dry_run=dry_run)
    _print_lines(report.lines(), err=False)


@app.command("publish")
def publish_command(  # noqa: PLR0917 - one typer option each
    to: Annotated[str, typer.Option(help="the release registry and namespace, e.g. ghcr.io/acme")],
    version: Annotated[str | None, typer.Option(help="the release version (semver); omit for a branch build")] = None,
    branch: Annotated[str | None, typer.Option(help="the branch, for a build that is not a release")] = None,
    variant: Annotated[list[str] | None, typer.Option(help="also publish this variant (repeatable)")] = None,
    username: Annotated[str | None, typer.Option(help="the registry user")] = None,
    token: Annotated[
        str | None, typer.Option(help="where the token is: env:NAME or file:PATH, never the token")
    ] = None,
    licenses: Annotated[str, typer.Option(help="the SPDX licence expression for the image labels")] = "",
    *,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print every reference and digest, write nothing")] = False,
) -> None:
    """Publish what ci built and checked: every image by digest first, then the tags."""
    from cargohold.publish import check_request, publish, release_images  # noqa: PLC0415 - the SDK

    secret_uri = _secret_uri(token, username)  # a missing or empty token fails here, before anything else
    config = _load()
    check_request(config, version, branch, variant or [])
    wanted = [t for name in config.services for t in targets(config, name, None)]
    wanted += [t for v in variant or [] for name in config.services if v in config.service(name).variants
               for t in targets(config, name, v) if t not in wanted]  # fmt: skip
    planned = make_plan(config, wanted, None)
    _require_checked(planned)
    root = OPTIONS.config.resolve().parent
    source = provenance(config, root)

    def prepare(credentials: Credentials | None) -> list[ReleaseImage]:
        return release_images(config, planned, to=to, version=version, branch=branch, provenance=source,
                              licenses=licenses, credentials=credentials)  # fmt: skip

    release = (version or branch or "", source)
    images, credentials = anyio.run(_engine_side, config, prepare, release, secret_uri, username)
    for image in images:
        _print_lines(image.lines(), err=False)
    if dry_run:
        typer.echo(f"dry run: {len(images)} images, {sum(len(i.tags) for i in images)} tags; nothing written")
        return
    publish(Registry(Reference.parse(planned.registry + "/x").registry), _release_registry(to, credentials), images)
    typer.echo(f"published {len(images)} images to {to}; tags moved after all were pushed by digest")


@app.command()
def validate() -> None:
    """Check cargohold.toml (and the CARGOHOLD_* overrides) without running anything."""
    config = _load()
    typer.echo(f"{OPTIONS.config}: valid (project {config.project.name})")


@engine_app.command("status")
def engine_status() -> None:
    """Which engine would be used, without starting one."""
    found = engines.resolve(start=False)
    state = "up" if _native_is_up(found) else "not running (starts on first use)"
    typer.echo(f"{found.kind.value}: {found.description}")
    if found.kind is engines.EngineKind.NATIVE:
        typer.echo(f"state: {state}")


@engine_app.command("start")
def engine_start() -> None:
    """Resolve the engine and start it when it is a native one."""
    found = engines.resolve(start=True)
    how = "reused" if found.reused else f"started in {found.start_seconds:.1f} s"
    typer.echo(f"{found.kind.value}: {found.description} — {how}")
    typer.echo(f"client environment: {found.export()}")


@engine_app.command("stop")
def engine_stop() -> None:
    """Stop the native engine cargohold started (a remote or Docker engine is left alone)."""
    engine_dir = engines.native_engine_dir()
    if engine_dir is None:
        typer.echo("no native engine on this machine; nothing to stop")
        return
    from cargohold.native_engine import NativeEngine  # noqa: PLC0415

    stopped = NativeEngine.at(engine_dir).stop()
    typer.echo("stopped the native engine" if stopped else "the native engine was not running")


def _native_is_up(found: engines.Engine) -> bool:
    engine_dir = engines.native_engine_dir()
    if found.kind is not engines.EngineKind.NATIVE or engine_dir is None:
        return False
    from cargohold.native_engine import NativeEngine  # noqa: PLC0415

    return NativeEngine.at(engine_dir).is_up()


def _load() -> Config:
    return load_config(OPTIONS.config)


def run_registry(config: Config) -> str:
    """Where this run publishes: the configured registry, else the local one under the project name."""
    return config.project.registry or f"{local_registry_address()}/{config.project.name}"


async def _smoke(config: Config, package: str) -> SmokeReport:
    from cargohold.main import Cargohold  # noqa: PLC0415 - the SDK (see the module docstring)
    from cargohold.trust import bundle_file, read_bundle  # noqa: PLC0415

    bundle = bundle_file(read_bundle(config.ca_bundle_paths()))
    # @function keeps the plain method for client mode; mypy sees only the decorator's type.
    smoke = cast("Callable[..., Awaitable[SmokeReport]]", Cargohold().smoke)
    return await smoke(str(config.images.reference("python")), run_registry(config), bundle, package)


async def _build(config: Config, wanted: list[BuildTarget]) -> BuildRun:
    from cargohold.build import build_all  # noqa: PLC0415 - the SDK (see the module docstring)

    jobs, _ = _host_jobs(config, wanted)
    return await build_all(jobs)


def _host_jobs(config: Config, wanted: list[BuildTarget]) -> tuple[list[Job], dagger.File | None]:
    """Client mode's jobs: host folders hashed and handed to the engine; and the CA bundle they use."""
    from cargohold.build import jobs_for  # noqa: PLC0415 - the SDK (see the module docstring)
    from cargohold.trust import bundle_file, read_bundle  # noqa: PLC0415

    root = OPTIONS.config.resolve().parent
    hosts = host_services(config, root, wanted)
    bundle = bundle_file(read_bundle(config.ca_bundle_paths()))
    jobs = jobs_for(
        config, wanted, service_inputs(config, hosts), keys_for(config, hosts),
        registry=run_registry(config), ca_bundle=bundle, provenance=provenance(config, root),
        cache_registry=config.project.cache,
    )  # fmt: skip
    return jobs, bundle


def make_plan(config: Config, wanted: list[BuildTarget], since: str | None) -> Plan:
    """Keys from the host's files, then registry lookups; no engine."""
    root = OPTIONS.config.resolve().parent
    use_local_base_images()
    config = _load()
    keys = keys_for(config, host_services(config, root, wanted))
    registry = run_registry(config)
    changes = None
    if since is not None:
        from cargohold.changes import affected_services, changed_files  # noqa: PLC0415 - git only when asked

        changes = affected_services(config, changed_files(root, since))
    cache = config.project.cache
    return decide(keys, lookup_all(references_for(keys, registry, cache)), registry, changes, cache)


def _run_in_session(body: Callable[[], Awaitable[T]]) -> T:
    async def session() -> T:
        found = engines.resolve(start=True)
        async with engines.session(found, sys.stderr if OPTIONS.verbose else None):
            return await body()

    return anyio.run(session)


def _print_smoke(report: SmokeReport) -> None:
    typer.echo(json.dumps(vars(report), indent=2, default=str))


def _print_lines(lines: Sequence[str], *, err: bool = True) -> None:
    for line in lines:
        typer.echo(line, err=err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; the process exit code. Known errors: 2 and one line; a failed exec: 1 and its stderr."""
    logging.basicConfig(level=logging.INFO, format="cargohold: %(message)s", stream=sys.stderr)
    interrupts.install()  # SIGTERM stops a run like Ctrl-C: sessions close, exit 143
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    try:
        # Without standalone mode, click returns a typer.Exit's code instead of raising it.
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except BaseException as e:
        leaves = _leaves(e)  # concurrent steps fail as exception groups
        if not all(_known(leaf) for leaf in leaves):
            raise  # our bug: exit 1 with the traceback
        return max(_report(leaf) for leaf in leaves)
    if code == interrupts.TYPER_INTERRUPTED:  # typer's answer to Ctrl-C (and so to SIGTERM): say which, and how
        return _report(KeyboardInterrupt())
    return code if isinstance(code, int) else 0


# The engine's words for a FROM whose reference does not exist: the user's to fix (exit 2), not a crash.
_MISSING_IMAGE = re.compile(r'failed to resolve (?:source metadata for |image )"?([^"\s]+)"?.*: not found')
KNOWN_ERRORS: tuple[type[BaseException], ...] = (typer.TyperException, typer.Abort, KeyboardInterrupt, CargoholdError)


def _known(error: BaseException) -> bool:
    """Ours to report in a line or two; the SDK's errors only where it was imported (nothing else raises them)."""
    sdk = sys.modules.get("dagger")
    return isinstance(error, KNOWN_ERRORS) or (sdk is not None and isinstance(error, sdk.QueryError))


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _report(error: BaseException) -> int:
    """Print one known error the way a person wants to read it; its exit code."""
    if isinstance(error, typer.TyperException):  # usage: unknown option, bad value, missing argument
        typer.echo(f"error: {error.format_message()} — see 'python pipelines.py --help'", err=True)
        return 2
    if isinstance(error, CargoholdError):  # ConfigError and BuildContextError carry several lines
        for line in error.lines():
            typer.echo(f"error: {line}", err=True)
        return 2
    if isinstance(error, (KeyboardInterrupt, typer.Abort)):  # Ctrl-C, or SIGTERM (see interrupts)
        typer.echo(f"interrupted ({interrupts.signal_name()})", err=True)
        return interrupts.exit_code()
    return _report_engine_error(error)


def _report_engine_error(error: BaseException) -> int:
    """A step that failed inside the engine (its stderr), or one the engine refused (pulling an image, say)."""
    import dagger  # noqa: PLC0415 - already imported: the error came from it

    if isinstance(error, dagger.ExecError):
        typer.echo(f"error: {' '.join(error.command)} exited with {error.exit_code}\n{error.stderr.strip()}", err=True)
        return 1
    if isinstance(error, dagger.QueryError) and (missing := _MISSING_IMAGE.search(str(error))):
        typer.echo(f"error: image {missing[1]} not found in its registry — fix the reference in cargohold.toml "
                   "[images] (or its CARGOHOLD_IMAGE_* override), or push that image", err=True)  # fmt: skip
        return 2
    typer.echo(f"error: {' '.join(str(error).split())[:500]}", err=True)
    return 1
