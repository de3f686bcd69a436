"""Building the images of services: stages from the cache or built, the runtime finished and pushed.

One path for both modes: the CLI hands in host folders, ``dagger call`` hands
in the module's source directory; from ``ServiceInputs`` on, everything is the
same. For each target:

1. the final image's content tag is looked up: a hit means nothing is built
   (the service is reused, its stages skipped);
2. otherwise every stage's cache entry is looked up; a miss is built (after
   the stages it reads) and exported, a hit stays in the registry unless a
   stage built here reads it;
3. the runtime is assembled in the registry from the stages' entries
   (``assemble``: a config and a manifest, no layer rebuilt or pushed again),
   pushed under its content tag, and the moving ``<service>:<variant>`` tag
   follows it.
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

from cargohold import interrupts, package_layers, telemetry
from cargohold.assemble import RuntimeSpec, in_engine, in_registry
from cargohold.config import Config, ServiceConfig, ServiceKind
from cargohold.errors import CargoholdError
from cargohold.keys import RUNTIME_BASE, BuildTarget, SourceTree, StageKeys
from cargohold.reuse import BuildRun, PushedImage, move_tag, reuse_existing
from cargohold.stage_cache import (
    LABEL_SECONDS,
    CacheEntry,
    Hit,
    Outcome,
    StageRecord,
    export,
    folder_image,
    import_image,
    import_pulled,
    look_up_all,
    lookup,
    resolve_images,
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


def runtime_spec(job: Job, stages: PythonStages | NodeStages, total_seconds: float) -> RuntimeSpec:
    """The runtime image as data: the stages' layers, and the service's settings over the recipe's."""
    svc = job.config.service(job.target.service)
    user, workdir = stages.runtime_user()
    labels = image_labels(job.target.service, svc, job.provenance.revision, job.provenance.source_url)
    # The whole build's time rides along, so a later reuse can say what it saved.
    labels[LABEL_SECONDS] = f"{total_seconds:.2f}"
    return RuntimeSpec(
        layers=stages.runtime_layers(),
        env=(*stages.runtime_env(), *svc.env.items()),
        workdir=workdir,
        user=user,
        labels=labels,
        port=svc.port,
        entrypoint=tuple(svc.command),
        healthcheck=tuple(health_command(svc)),
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
    job: Job, stages: PythonStages | NodeStages, outputs: StageOutputs, records: list[StageRecord]
) -> PushedImage:
    """Assemble the runtime from the stages' entries (or, failing that, in the engine), push it, move the tag."""
    began = time.monotonic()
    mine = [r for r in records if r.service == job.target.service and r.variant == job.target.variant]
    spec = runtime_spec(job, stages, sum(r.seconds for r in mine))
    reference = ""
    if all(stage in outputs.entries for stage in spec.stages):
        assemble = functools.partial(in_registry, spec, outputs.entries, str(job.image_entry))
        try:
            reference = await interrupts.in_thread(assemble)
        except CargoholdError as e:
            log.warning("%s: assembling in the registry failed, the engine builds the runtime: %s", job.target.label, e)
    else:
        missing = [stage for stage in spec.stages if stage not in outputs.entries]
        log.warning("%s: no cache entry for %s, the engine builds the runtime", job.target.label, ", ".join(missing))
    if not reference:
        base, folders = await outputs.in_engine((RUNTIME_BASE, *(stage for stage, _ in spec.layers)))
        reference = await in_engine(spec, base, folders).publish(str(job.image_entry))
    records.append(_record(job, "runtime", Outcome.BUILT, seconds=time.monotonic() - began))
    await move_tag(reference, job.moving_ref)
    log.info("%s: built %s", job.target.label, reference)
    return PushedImage(job.target.service, job.target.variant, reference, Outcome.BUILT.value, job.keys.image)


async def stage_outputs(
    job: Job, stages: PythonStages | NodeStages, records: list[StageRecord], *, pull: tuple[str, ...] = ()
) -> StageOutputs:
    """Every stage: a cache hit (left in the registry until something builds on it) or built and exported.

    ``pull`` names stages wanted in the engine in any case (lint and unit tests run on them).
    """
    outputs = StageOutputs(job, stages)
    hits = await outputs.look_up()
    # The bases of the stages to build: a missing one fails here, before any stage is built or exported.
    # (Only those: a fresh runner that builds nothing but the app pulls no base at all.)
    bases = tuple(base for stage in job.keys.stages if stage not in hits and (base := stages.base_of(stage)))
    await resolve_images(bases)
    if bases:  # something is built: what its bases bring decides how (see PythonStages.builder_tools)
        outputs.stages = await stages.with_base_facts()
    async with anyio.create_task_group() as tg:
        for stage in job.keys.stages:
            name = f"stage {job.target.label} {stage}"
            attributes = telemetry.stage_attributes(job.target.service, job.target.variant, stage)
            tg.start_soon(telemetry.traced, name, attributes, outputs.settle, stage, hits.get(stage), stage in pull)
    records += [outputs.records[stage] for stage in job.keys.stages]
    return outputs


class StageOutputs:
    """The stages of one target: their registry entries, and their folders once in the engine.

    A hit stays in the registry until a stage that is built reads it (or lint and
    tests want it): then the engine pulls it, checking every layer's digest; an
    entry that fails that check is a miss and its stage is built after all.
    """

    def __init__(self, job: Job, stages: PythonStages | NodeStages) -> None:
        self.job, self.stages = job, stages
        self.entries: dict[str, Hit] = {}  # stage → its entry in the registry (a hit, or just exported)
        self.folders: dict[str, dagger.Directory] = {}  # stage → its folder in the engine
        self.records: dict[str, StageRecord] = {}
        self.base: dagger.Container | None = None  # the runtime base, when built in this run
        self._locks = {stage: anyio.Lock() for stage in job.keys.stages}
        self._built: dict[str, tuple[dagger.Container, float]] = {}  # stage → (its entry image, build seconds)
        self._packages: dict[str, package_layers.PackagesBuild] = {}  # a layered stage's parts, when built here
        self._notes: dict[str, str] = {}  # stage → why it was not built as configured (a warning on its record)

    def entry(self, stage: str) -> CacheEntry:
        """Where ``stage``'s output lives in the stage cache."""
        job = self.job
        return CacheEntry.for_stage(job.cache_registry, job.target.service, job.target.variant, stage,
                                    job.keys.stages[stage])  # fmt: skip

    async def look_up(self) -> dict[str, Hit]:
        """Every stage's entry, looked up side by side; the hits (known as entries from now on)."""
        hits = await look_up_all({stage: self.entry(stage) for stage in self.job.keys.stages})
        self.entries.update(hits)
        return hits

    async def settle(self, stage: str, hit: Hit | None, pull: bool) -> None:  # noqa: FBT001 - start_soon is positional
        """A hit is recorded (and pulled when wanted); a miss is built, after what it reads, then exported.

        The export runs after the stage's folder is ready, so stages that read the folder
        build while it is compressed and pushed.
        """
        if hit is None:
            await self.materialize(stage)
            await self._export(stage)
            return
        # A stage built here may have pulled this hit already (its record then says what was pulled).
        self.records.setdefault(stage, _record(self.job, stage, Outcome.HIT, saved=hit.saved_seconds))
        if pull:
            await self.materialize(stage)

    async def materialize(self, stage: str) -> None:
        """``stage``'s folder in the engine: its hit pulled (and checked), or built (exported by ``settle``)."""
        async with self._locks[stage]:
            if stage in self.folders or (stage == RUNTIME_BASE and self.base is not None):
                return
            if (hit := self.entries.get(stage)) is not None:
                began = time.monotonic()
                if await self._pull(stage, hit):
                    seconds, pulled = time.monotonic() - began, hit.compressed_bytes
                    self.records[stage] = _record(self.job, stage, Outcome.HIT, saved=hit.saved_seconds,
                                                  seconds=seconds, pulled_bytes=pulled)  # fmt: skip
                    return
                del self.entries[stage]  # unreadable: built below, like a miss, and exported here
            for before in self.stages.reads(stage):
                await self.materialize(before)
            await self._build(stage)
            if hit is not None:
                await self._export(stage)

    async def in_engine(self, stages: tuple[str, ...]) -> tuple[dagger.Container, dict[str, dagger.Directory]]:
        """The runtime base and the folders of ``stages``, in the engine (the runtime's fallback path)."""
        for stage in stages:
            await self.materialize(stage)
        assert self.base is not None  # noqa: S101 - materialize(RUNTIME_BASE) sets it
        return self.base, self.folders

    async def _pull(self, stage: str, hit: Hit) -> bool:
        if stage == RUNTIME_BASE:
            self.base = await import_image(hit)
            return self.base is not None
        imported = await import_pulled(hit, self.stages.output_path(stage))
        if imported is not None:
            self.folders[stage] = imported
        return imported is not None

    async def _build(self, stage: str) -> None:
        began = time.monotonic()
        if stage == RUNTIME_BASE:
            self.base = image = self.stages.runtime_base()
            await image.sync()
        elif (packages := await self._build_packages(stage)) is not None:
            self._packages[stage], self.folders[stage] = packages, packages.folder
            return
        else:
            output = self.stages.stage(stage, self.folders)
            await output.sync()
            self.folders[stage] = output
            image = folder_image(self.stages.output_path(stage), output, self.stages.layers_apart(stage))
        self._built[stage] = (image, time.monotonic() - began)

    async def _build_packages(self, stage: str) -> package_layers.PackagesBuild | None:
        """The dependency stage as a layer per package, when the service asks for it and its lockfile allows."""
        if stage != "dependencies" or not self.job.keys.packages or not isinstance(self.stages, PythonStages):
            return None
        built = await package_layers.build(self.stages, self.job.keys.packages, self.entry(stage).repository)
        if isinstance(built, str):  # a lockfile that cannot be split: one layer, and the record says why
            log.warning("%s: %s", self.job.target.label, built)
            self._notes[stage] = built
            return None
        return built

    async def _export(self, stage: str) -> None:
        entry, key = self.entry(stage), self.job.keys.stages[stage]
        if (packages := self._packages.get(stage)) is not None:
            seconds = packages.seconds
            export_seconds, pushed, warning = await package_layers.export_stage(packages, entry, key)
            log.info("%s: %s: %s", self.job.target.label, stage, packages.summary())
        else:
            image, seconds = self._built[stage]
            export_seconds, warning = await export(entry, image, seconds, key)
            pushed = 0
        exported = None if warning else await lookup(entry)
        if exported is not None:
            self.entries[stage] = exported
            pushed = pushed or exported.compressed_bytes
        warning = "; ".join(w for w in (self._notes.get(stage, ""), warning) if w)
        self.records[stage] = _record(self.job, stage, Outcome.BUILT, seconds=seconds, export_seconds=export_seconds,
                                      pushed_bytes=pushed, warning=warning)  # fmt: skip


def _record(job: Job, stage: str, outcome: Outcome, *, saved: float = 0.0, **numbers: float | str) -> StageRecord:
    key = job.keys.image if stage == "runtime" else job.keys.stages[stage]
    record = StageRecord(job.target.service, job.target.variant, stage, key, outcome, saved_seconds=saved, **numbers)  # type: ignore[arg-type]
    telemetry.annotate_stage(record)  # on the stage's span, when the run is traced
    return record


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
