"""The CI pipeline: lint, unit tests and builds of every service side by side, then integration.

For each target whose image is not already in the registry for identical
inputs, the stage outputs (from the cache, or built) feed three concurrent
tasks: lint and unit tests in the service's dev container, and the runtime
build. A target reused for identical inputs gets green "skipped" results, so
required checks never wait for a job that has nothing to do. When all builds
are done, the integration suite runs against the images — built or reused,
never rebuilt — unless a marker says it already passed for exactly these
images and this suite.

Every task ends with a result; one failure does not hide the others, unless
``fail_fast`` asks to stop at the first.

What a run is (options, results, markers) and the run that needs no engine
live in ci_run.py, which does not import the Dagger SDK.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import anyio
import dagger
from dagger import dag

from cargohold import telemetry
from cargohold.build import Job, publish_runtime, stage_outputs, stages_for
from cargohold.ci_run import CiOptions, CiRun, checked_marker, integration_marker, over_budget, skipped
from cargohold.config import Config
from cargohold.errors import CargoholdError
from cargohold.image_checks import image_facts
from cargohold.image_facts import gate_problems
from cargohold.integration import JUNIT, app_services, database, suite_container
from cargohold.keys import SourceTree
from cargohold.results import TaskKind, TaskResult, TaskStatus, tail
from cargohold.reuse import reuse_existing
from cargohold.stage_cache import CacheEntry, lookup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Context:
    """What every task of one run shares: where results go, what was asked, how to stop early."""

    run: CiRun
    options: CiOptions
    scope: anyio.CancelScope

    def stop_if_fail_fast(self) -> None:
        if self.options.fail_fast:
            self.scope.cancel()


@dataclass(frozen=True)
class IntegrationInputs:
    """The suite's folder, as the engine sees it and as content (for its key)."""

    suite: dagger.Directory
    tree: SourceTree


async def run_ci(
    config: Config,
    jobs: Sequence[Job],
    options: CiOptions,
    suite: IntegrationInputs | None,
    ca_bundle: dagger.File | None,
) -> CiRun:
    """Every target's checks concurrently, then integration; results for every task."""
    run = CiRun()
    with anyio.CancelScope() as scope:
        ctx = _Context(run, options, scope)
        async with anyio.create_task_group() as tg:
            for job in jobs:
                attributes = telemetry.target_attributes(job.target.service, job.target.variant, job.keys.image)
                tg.start_soon(telemetry.traced, f"service {job.target.label}", attributes, _target, ctx, job)
        if TaskKind.INTEGRATION in options.only and suite is not None and config.integration is not None:
            await _integration(ctx, config, jobs, suite, ca_bundle)
    if scope.cancel_called:
        run.results += _cancelled(config, jobs, options, run)
    return run


async def _target(ctx: _Context, job: Job) -> None:
    """Lint, unit tests and build of one target; green skips for what identical inputs already passed."""
    run, options = ctx.run, ctx.options
    label = job.target.service
    reused = await reuse_existing(job.target, job.keys, job.registry, run.records)
    marker = checked_marker(job.cache_registry, label, job.target.variant, job.keys.image)
    if reused is not None:
        run.images[label] = reused
        telemetry.annotate({"cargohold.image.outcome": "reused", "cargohold.image.reference": reused.reference})
        if TaskKind.BUILD in options.only and (over := await over_budget(job.config, reused)):
            run.results.append(TaskResult(f"{label}:build", TaskKind.BUILD, TaskStatus.FAILED, detail=over))
            ctx.stop_if_fail_fast()
            return
        if await lookup(marker) is not None:  # built and checked before: nothing to do
            run.results += [skipped(f"{label}:{k.value}", k) for k in options.per_target()]
            return
    svc = job.config.service(label)
    stages = stages_for(job)
    try:
        checks = {TaskKind.LINT, TaskKind.TEST} & set(options.per_target())
        outputs = await stage_outputs(job, stages, run.records, pull=stages.dev_reads() if checks else ())
    except dagger.ExecError as e:
        run.results.append(_failure(f"{label}:build", TaskKind.BUILD, 0.0, e, "a build stage failed"))
        ctx.stop_if_fail_fast()
        return

    async def build() -> str:
        runtime = telemetry.stage_attributes(label, job.target.variant, "runtime")
        image = await telemetry.traced(f"stage {job.target.label} runtime", runtime,
                                       publish_runtime, job, stages, outputs, run.records)  # fmt: skip
        facts = await image_facts(job.config, image)
        telemetry.annotate_facts(facts, image.reference)
        if problems := gate_problems(facts, svc.allow_findings):
            msg = f"{image.service}:{image.variant} failed its image gate: " + "; ".join(problems)
            raise CargoholdError(msg, "\n".join(facts.lines()))
        run.images[label] = image
        return f"{image.reference} ({facts.compressed_size / 1e6:.1f} MB)"

    tasks: dict[TaskKind, Callable[[], Awaitable[str]]] = {
        TaskKind.LINT: lambda: _commands(outputs.stages.dev(outputs.folders), svc.lint),
        TaskKind.TEST: lambda: _commands(outputs.stages.dev(outputs.folders), svc.test),
        TaskKind.BUILD: build,
    }
    kinds = options.per_target()
    if reused is not None and TaskKind.BUILD in kinds:  # the image exists; only its checks are missing
        kinds.remove(TaskKind.BUILD)
        run.results.append(skipped(f"{label}:build", TaskKind.BUILD))
    async with anyio.create_task_group() as tg:
        for kind in kinds:
            tg.start_soon(_task, ctx, f"{label}:{kind.value}", kind, tasks[kind])
    passed = {r.kind for r in run.results if r.name.startswith(f"{label}:") and r.status is TaskStatus.PASSED}
    if {TaskKind.LINT, TaskKind.TEST} <= passed:
        await _publish_marker(marker)


async def _commands(ctr: dagger.Container, commands: Sequence[str]) -> str:
    """Run each shell command in turn; the first that fails raises ExecError with its own output."""
    if not commands:
        return "nothing configured"
    for command in commands:
        ctr = ctr.with_exec(["sh", "-c", command])
    await ctr.sync()
    return "; ".join(commands)


async def _task(ctx: _Context, name: str, kind: TaskKind, work: Callable[[], Awaitable[str]]) -> None:
    """Run one task in its span and record its result; a failure is recorded, never raised."""
    with telemetry.span(f"check {name}", telemetry.check_attributes(name, kind)):
        began = time.monotonic()
        try:
            result = TaskResult(name, kind, TaskStatus.PASSED, detail=await work())
        except (dagger.ExecError, dagger.QueryError, CargoholdError) as e:
            result = _failure(name, kind, time.monotonic() - began, e)
        result = replace(result, seconds=time.monotonic() - began)
        ctx.run.results.append(result)
        telemetry.annotate_result(result)
    if result.status is TaskStatus.FAILED:
        ctx.stop_if_fail_fast()
    else:
        log.info("%s passed (%.1f s)", name, result.seconds)


def _failure(name: str, kind: TaskKind, seconds: float, error: Exception, detail: str = "") -> TaskResult:
    """A failed task with the tool's own output, not a Dagger stack trace."""
    if isinstance(error, dagger.ExecError):
        output = "\n".join(part for part in (error.stdout, error.stderr) if part.strip())
        command = error.command[-1:] if error.command[:2] == ["sh", "-c"] else error.command
        detail = detail or f"{' '.join(command)} exited with {error.exit_code}"
        return TaskResult(name, kind, TaskStatus.FAILED, seconds, detail, tail(output))
    text = error.one_line() if isinstance(error, CargoholdError) else str(error)
    return TaskResult(name, kind, TaskStatus.FAILED, seconds, detail or text.splitlines()[0][:200], tail(text))


async def _integration(
    ctx: _Context, config: Config, jobs: Sequence[Job], suite: IntegrationInputs, ca_bundle: dagger.File | None
) -> None:
    """The suite against every service's image, unless it already passed for exactly these images."""
    run = ctx.run
    settings = config.integration
    assert settings is not None  # noqa: S101 - checked by the caller
    if missing := [name for name in config.services if name not in run.images]:
        why = f"skipped: no image for {', '.join(missing)} (a build failed or was not selected)"
        run.results.append(TaskResult("integration", TaskKind.INTEGRATION, TaskStatus.SKIPPED, detail=why))
        return
    marker = integration_marker(jobs[0].cache_registry, suite.tree, {n: i.key for n, i in run.images.items()}, config)
    if await lookup(marker) is not None:
        run.results.append(skipped("integration", TaskKind.INTEGRATION))
        return

    async def suite_run() -> str:
        db = database(config.images.postgres)
        services = app_services(config, {n: i.reference for n, i in run.images.items()}, db)
        ctr = suite_container(config, settings, suite=suite.suite, services=services, db=db, ca_bundle=ca_bundle)
        ctr = await ctr.sync()
        run.junit_files["integration"] = await ctr.file(JUNIT).contents()
        await _publish_marker(marker)
        return " ".join(settings.command)

    await _task(ctx, "integration", TaskKind.INTEGRATION, suite_run)


async def _publish_marker(marker: CacheEntry) -> None:
    """A tiny image that says the suite passed; a failure to write it only costs a rerun next time."""
    try:
        await dag.container().with_new_file("/passed", "ok\n").publish(str(marker))
    except dagger.QueryError as e:
        log.warning("could not record the integration pass (%s); the next run repeats it", e)


def _cancelled(config: Config, jobs: Sequence[Job], options: CiOptions, run: CiRun) -> list[TaskResult]:
    """Skipped results for every task that --fail-fast stopped before it ended."""
    done = {r.name for r in run.results}
    names = [f"{j.target.service}:{k.value}" for j in jobs for k in options.per_target()]
    if TaskKind.INTEGRATION in options.only and config.integration is not None:
        names.append("integration")
    kinds = {n: TaskKind(n.rsplit(":", 1)[-1]) if ":" in n else TaskKind.INTEGRATION for n in names}
    return [TaskResult(n, kinds[n], TaskStatus.SKIPPED, detail="skipped: stopped by --fail-fast")
            for n in names if n not in done]  # fmt: skip
