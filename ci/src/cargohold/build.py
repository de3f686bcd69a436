"""Building the images of services: stages from the cache or built, the runtime finished and pushed.

One path for both modes: the CLI hands in host folders, ``dagger call`` hands
in the module's source directory; from ``ServiceInputs`` on, everything is the
same. For each target:

1. the final image's content tag is looked up: a hit means nothing is built
   (the service is reused, its stages skipped);
2. otherwise each stage is imported from the registry cache or built and
   exported, wave by wave (the stages of a wave side by side);
3. the runtime is finished, pushed under its content tag, and the moving
   ``<service>:<variant>`` tag follows it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import anyio
import dagger

from cargohold import telemetry
from cargohold.config import Config, ServiceConfig, ServiceKind
from cargohold.image_facts import ImageFacts, compressed_size, read_image_facts
from cargohold.keys import BuildTarget, SourceTree, StageKeys
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.reuse import BuildRun, PushedImage, move_tag, reuse_existing
from cargohold.stage_cache import (
    LABEL_SECONDS,
    CacheEntry,
    Hit,
    Outcome,
    StageRecord,
    export,
    import_pulled,
    lookup,
)
from cargohold.stages_node import NodeStages
from cargohold.stages_python import PythonStages

log = logging.getLogger(__name__)

OCI: Final = "org.opencontainers.image"


@dataclass(frozen=True)
class ServiceInputs:
    """What one service's build reads: its context (and its content), and its variant's wheelhouse."""

    source: dagger.Directory
    tree: SourceTree
    wheelhouse: dagger.Directory | None = None
    wheelhouse_digest: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where an image comes from, for its OCI labels."""

    revision: str = ""
    source_url: str = ""
    committed: str = ""  # the commit's time, RFC 3339 UTC: a release's "created" (the same on every rerun)


@dataclass(frozen=True)
class Job:
    """One target with everything its build needs."""

    config: Config
    target: BuildTarget
    inputs: ServiceInputs
    keys: StageKeys
    registry: str  # host[/namespace] of the images
    ca_bundle: dagger.File | None
    provenance: Provenance
    cache_registry: str  # host[/namespace] of the stage cache entries

    @property
    def image_entry(self) -> CacheEntry:
        """The content-addressed tag of the final image."""
        return CacheEntry.for_image(self.registry, self.target.service, self.target.variant, self.keys.image)

    @property
    def moving_ref(self) -> str:
        """The tag that follows the latest build of this variant."""
        return f"{self.registry}/{self.target.service}:{self.target.variant}"


def targets(config: Config, service: str | None, variant: str | None) -> list[BuildTarget]:
    """The images a build makes: one service or all, one variant or each service's default."""
    names = [service] if service else list(config.services)
    return [BuildTarget(name, config.service(name).variant(variant)[0]) for name in names]


def image_labels(name: str, svc: ServiceConfig, revision: str, source_url: str) -> dict[str, str]:
    """OCI labels for the runtime image (pure)."""
    labels = {f"{OCI}.title": name, f"{OCI}.description": f"{svc.kind.value} service {name}"}
    if revision:
        labels[f"{OCI}.revision"] = revision
    if source_url:
        labels[f"{OCI}.source"] = source_url
    return labels


def health_command(svc: ServiceConfig) -> list[str]:
    """A health check that needs only the service's own runtime (no curl, no shell)."""
    url = f"http://127.0.0.1:{svc.port}{svc.health}"
    if svc.kind is ServiceKind.PYTHON:
        return ["python", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout=3)"]
    return ["node", "-e", f"fetch({url!r}).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]


def stages_for(job: Job) -> PythonStages | NodeStages:
    """The stage recipe of the service's kind."""
    svc = job.config.service(job.target.service)
    images = job.config.images
    src = job.inputs.source
    if svc.kind is ServiceKind.PYTHON:
        _, variant = svc.variant(job.target.variant)
        return PythonStages(
            src, svc.python_settings, variant, images.python_build, images.python, job.inputs.wheelhouse, job.ca_bundle
        )
    return NodeStages(src, svc.node_settings, images.node, images.node_runtime, job.ca_bundle)


def finish(job: Job, runtime: dagger.Container) -> dagger.Container:
    """The service's settings on its runtime image: env, labels, port, entrypoint, health check."""
    svc = job.config.service(job.target.service)
    for key, value in svc.env.items():
        runtime = runtime.with_env_variable(key, value)
    labels = image_labels(job.target.service, svc, job.provenance.revision, job.provenance.source_url)
    for key, value in labels.items():
        runtime = runtime.with_label(key, value)
    return (
        runtime.with_exposed_port(svc.port)
        .with_entrypoint(list(svc.command))
        .with_docker_healthcheck(health_command(svc), interval="10s", timeout="3s", start_period="10s", retries=3)
    )


async def build_all(jobs: list[Job]) -> BuildRun:
    """Every job concurrently; the images in job order and the cache report."""
    run = BuildRun([], [])
    done: dict[BuildTarget, PushedImage] = {}

    async def one(job: Job) -> None:
        done[job.target] = await build_one(job, run.records)

    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(one, job)
    run.images = [done[job.target] for job in jobs]
    return run


async def build_one(job: Job, records: list[StageRecord]) -> PushedImage:
    """One target: reuse the final image for identical inputs, else stages (cached or built) and runtime."""
    if (reused := await reuse_existing(job.target, job.keys, job.registry, records)) is not None:
        return reused
    stages = stages_for(job)
    return await publish_runtime(job, stages, await stage_outputs(job, stages, records), records)


async def publish_runtime(
    job: Job, stages: PythonStages | NodeStages, outputs: dict[str, dagger.Directory], records: list[StageRecord]
) -> PushedImage:
    """Finish the runtime from the stage outputs, push it under its content tag, and move the tag."""
    began = time.monotonic()
    runtime = await finish(job, stages.runtime(outputs)).sync()
    seconds = time.monotonic() - began
    # The whole build's time rides along, so a later reuse can say what it saved.
    total = seconds + sum(
        r.seconds for r in records if r.service == job.target.service and r.variant == job.target.variant
    )
    reference = await runtime.with_label(LABEL_SECONDS, f"{total:.2f}").publish(str(job.image_entry))
    records.append(_record(job, "runtime", Outcome.BUILT, seconds=seconds))
    await move_tag(reference, job.moving_ref)
    log.info("%s: built %s", job.target.label, reference)
    return PushedImage(job.target.service, job.target.variant, reference, Outcome.BUILT.value, job.keys.image)


async def stage_outputs(
    job: Job, stages: PythonStages | NodeStages, records: list[StageRecord]
) -> dict[str, dagger.Directory]:
    """Every stage's output folder, from the registry cache or built (and exported), wave by wave."""
    outputs: dict[str, dagger.Directory] = {}
    for wave in stages.waves():
        async with anyio.create_task_group() as tg:
            for stage in wave:
                name, attributes = f"stage {job.target.label} {stage}", telemetry.stage_attributes(
                    job.target.service, job.target.variant, stage)  # fmt: skip
                tg.start_soon(telemetry.traced, name, attributes, _stage, job, stages, stage, outputs, records)
    return outputs


async def _stage(
    job: Job,
    stages: PythonStages | NodeStages,
    stage: str,
    outputs: dict[str, dagger.Directory],
    records: list[StageRecord],
) -> None:
    """Import one stage from the cache, or build and export it; record which."""
    key = job.keys.stages[stage]
    entry = CacheEntry.for_stage(job.cache_registry, job.target.service, job.target.variant, stage, key)
    path = stages.output_path(stage)
    began = time.monotonic()
    if (hit := await lookup(entry)) is not None and (imported := await import_pulled(hit, path)) is not None:
        outputs[stage] = imported
        records.append(_hit_record(job, stage, hit, time.monotonic() - began))
        return
    output = stages.stage(stage, outputs)
    await output.sync()
    seconds = time.monotonic() - began
    export_seconds, warning = await export(entry, output, path, seconds, key)
    pushed = 0 if warning else ((await lookup(entry)) or Hit("", 0.0, 0)).compressed_bytes
    outputs[stage] = output
    records.append(_record(job, stage, Outcome.BUILT, seconds=seconds, pushed_bytes=pushed,
                           export_seconds=export_seconds, warning=warning))  # fmt: skip


def _record(job: Job, stage: str, outcome: Outcome, *, saved: float = 0.0, **numbers: float | str) -> StageRecord:
    key = job.keys.image if stage == "runtime" else job.keys.stages[stage]
    record = StageRecord(job.target.service, job.target.variant, stage, key, outcome, saved_seconds=saved, **numbers)  # type: ignore[arg-type]
    telemetry.annotate_stage(record)  # on the stage's span, when the run is traced
    return record


def _hit_record(job: Job, stage: str, hit: Hit, seconds: float) -> StageRecord:
    return _record(job, stage, Outcome.HIT, saved=hit.saved_seconds, seconds=seconds, pulled_bytes=hit.compressed_bytes)


def _located(config: Config, image: PushedImage) -> tuple[Reference, int | None]:
    """Where a pushed image is, and its variant's budget."""
    svc = config.service(image.service)
    return Reference.parse(image.reference), svc.budget_for(svc.variant(image.variant)[1])


async def size_against_budget(config: Config, image: PushedImage) -> tuple[int, int | None]:
    """(compressed size, budget) of a pushed image from its manifest alone: the budget check of a reused image."""
    ref, budget = _located(config, image)
    size = await anyio.to_thread.run_sync(compressed_size, Registry(ref.registry), ref.repository, str(ref.digest))
    return size, budget


async def image_facts(config: Config, image: PushedImage) -> ImageFacts:
    """The facts report of a pushed runtime image, against its variant's budget (read from the registry)."""
    ref, budget = _located(config, image)
    read = functools.partial(
        read_image_facts,
        Registry(ref.registry),
        ref.repository,
        ref.digest or image.variant,
        budget=budget,
        variant=image.variant,
        role="runtime",
    )
    return await anyio.to_thread.run_sync(read)


def jobs_for(
    config: Config,
    wanted: list[BuildTarget],
    inputs: Mapping[BuildTarget, ServiceInputs],
    keys: Mapping[BuildTarget, StageKeys],
    *,
    registry: str,
    ca_bundle: dagger.File | None,
    provenance: Provenance = Provenance(),
    cache_registry: str | None = None,
) -> list[Job]:
    """One job per target; the cache lives in the image registry unless told otherwise."""
    cache = cache_registry or registry
    return [Job(config, t, inputs[t], keys[t], registry, ca_bundle, provenance, cache) for t in wanted]
