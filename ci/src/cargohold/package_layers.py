"""The dependency stage as a layer per locked package: look the packages up, install the missing ones, stack.

What it is and why: ``packages`` (the pure half). Here, for one target whose
dependency entry missed:

1. the lockfile is read and split into packages (``packages.plan``); every
   package's entry, and the venv skeleton's, is looked up side by side;
2. the missing packages are installed in one exec, split by package
   (``PythonStages.packages``); the skeleton is built if it missed;
3. the stage's folder in the engine is the skeleton with every package's
   folder on it (a hit is pulled only if a later step reads it);
4. the export pushes each new part as an entry of its own, then stacks the
   stage's entry in the registry from all the parts' layers: nothing is
   compressed twice, and an unchanged package keeps its blob.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from cargohold import interrupts
from cargohold.assemble import stack_in_registry
from cargohold.errors import CargoholdError
from cargohold.packages import PACKAGES_REPOSITORY, NotPinnedError, PackagePlan, plan
from cargohold.stage_cache import (
    LABEL_CREATED,
    LABEL_KEY,
    LABEL_SECONDS,
    CacheEntry,
    Hit,
    export,
    folder_image,
    import_output,
    lookup,
)
from cargohold.stages_python import VENV, PythonStages

if TYPE_CHECKING:
    import dagger

log = logging.getLogger(__name__)


@dataclass
class PackagesBuild:
    """The layered dependency stage of one target, once built: its parts, found or made here."""

    plan: PackagePlan
    repository: str  # <cache namespace>/cache/<service>/<variant>/packages
    hits: dict[str, Hit]  # part tag → its entry, found in the registry
    built: dict[str, tuple[str, dagger.Directory]]  # part tag → (its key, its folder), made here
    folder: dagger.Directory  # the whole venv: every part stacked
    seconds: float

    @property
    def parts(self) -> list[tuple[str, str]]:
        """(tag, what it is) of every part, in layer order: the skeleton, then the lockfile's packages."""
        return [(self.plan.skeleton_tag, "cargohold: venv at /opt/venv")] + [
            (p.tag, f"cargohold: {p.pin} at {VENV}") for p in self.plan.packages
        ]

    def summary(self) -> str:
        """``3 of 17 packages installed, 14 from the cache``."""
        made, total = sum(1 for p in self.plan.packages if p.tag in self.built), len(self.plan.packages)
        return f"{made} of {total} packages installed, {total - made} from the cache"


async def build(stages: PythonStages, basis: str, cache_repository: str) -> PackagesBuild | str:
    """The stage's parts, found or installed; a reason (str) when the lockfile cannot be split."""
    began = time.monotonic()
    try:
        lock = plan(await stages.src.file(stages.settings.lockfile).contents(), basis)
    except NotPinnedError as e:
        return f"layer-per-package: {stages.settings.lockfile}: {e}; built as one layer"
    repository = f"{cache_repository}/{PACKAGES_REPOSITORY}"
    hits = await _look_up(repository, [lock.skeleton_tag, *(p.tag for p in lock.packages)])
    missing = tuple(p for p in lock.packages if p.tag not in hits)
    built: dict[str, tuple[str, dagger.Directory]] = {}
    if lock.skeleton_tag not in hits:
        built[lock.skeleton_tag] = (lock.skeleton_key, stages.venv_skeleton())
    if missing:
        installed = stages.packages(lock.requirements_file(missing), tuple(p.name for p in missing))
        built |= {p.tag: (p.key, installed.directory(p.name)) for p in missing}
    folders = {tag: folder for tag, (_, folder) in built.items()}
    folders |= {tag: import_output(hit, VENV) for tag, hit in hits.items()}
    from dagger import dag  # noqa: PLC0415 - the SDK only where the engine is used

    folder = dag.directory()
    for tag in (lock.skeleton_tag, *(p.tag for p in lock.packages)):
        folder = folder.with_directory(".", folders[tag])
    await _sync(built)
    return PackagesBuild(lock, repository, hits, built, folder, time.monotonic() - began)


async def export_stage(build: PackagesBuild, entry: CacheEntry, key: str) -> tuple[float, int, str]:
    """Push the new parts, then stack the stage's entry from every part; (seconds, bytes pushed, warning)."""
    began = time.monotonic()
    share = build.seconds / max(len(build.built), 1)  # what each new part cost, for its own label
    warnings: list[str] = []

    async def one(tag: str, part_key: str, folder: dagger.Directory) -> None:
        part = CacheEntry(build.repository, tag)
        _, warning = await export(part, folder_image(VENV, folder), share, part_key)
        hit = None if warning else await lookup(part)
        if hit is None:
            warnings.append(warning or f"cache export of {part} left no entry")
        else:
            build.hits[tag] = hit

    async with anyio.create_task_group() as tg:
        for tag, (part_key, folder) in build.built.items():
            tg.start_soon(one, tag, part_key, folder)
    pushed = sum(build.hits[tag].compressed_bytes for tag in build.built if tag in build.hits)
    if warnings:
        return time.monotonic() - began, pushed, warnings[0]
    labels = {LABEL_CREATED: _now(), LABEL_SECONDS: f"{build.seconds:.2f}", LABEL_KEY: key}
    parts = [(note, build.hits[tag]) for tag, note in build.parts]
    try:
        await interrupts.in_thread(functools.partial(stack_in_registry, parts, str(entry), labels))
    except CargoholdError as e:
        warning = f"stacking {entry} from its packages failed, the build goes on: {e}"
        log.warning("%s", warning)
        return time.monotonic() - began, pushed, warning
    return time.monotonic() - began, pushed, ""


async def _look_up(repository: str, tags: list[str]) -> dict[str, Hit]:
    hits: dict[str, Hit] = {}

    async def one(tag: str) -> None:
        if (hit := await lookup(CacheEntry(repository, tag))) is not None:
            hits[tag] = hit

    async with anyio.create_task_group() as tg:
        for tag in tags:
            tg.start_soon(one, tag)
    return hits


async def _sync(built: dict[str, tuple[str, dagger.Directory]]) -> None:
    """Every folder made here, in the engine (the packages' folders share one install: it runs once)."""
    async with anyio.create_task_group() as tg:
        for _, folder in built.values():
            tg.start_soon(folder.sync)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
