"""The registry cache of stages: look up, import, export — and a record of each.

Dagger ≥ 0.21 exports no cache of its own, so cargohold keeps one in the
registry, per stage. A stage's output folder is pushed as a one-layer image:

    <registry>/cache/<service>/<variant>:<stage>-<key>

(one namespace per service and variant, so ``cpu`` and ``cuda`` never evict
each other). The image's labels say when it was made and how long the stage
took, so a hit can report the time it saved. A missing or unreadable entry is
a miss; a failed export is a warning. Neither ever fails a build.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio

from cargohold import interrupts
from cargohold.errors import CargoholdError
from cargohold.reference import Reference
from cargohold.registry import Registry

if TYPE_CHECKING:
    import dagger

    T = TypeVar("T", dagger.Directory, dagger.Container)

log = logging.getLogger(__name__)

LABEL_CREATED: Final = "dev.cargohold.created"
LABEL_SECONDS: Final = "dev.cargohold.stage.seconds"
LABEL_KEY: Final = "dev.cargohold.stage.key"
K = TypeVar("K")  # the caller's names for a batch of entries (stage names, package tags)


class Outcome(enum.Enum):
    """What happened to a stage (or a whole image) in this run."""

    HIT = "hit"  # imported from the registry cache
    BUILT = "built"  # built here, then exported
    REUSED = "reused"  # the final image for these inputs was already in the registry
    SKIPPED = "skipped"  # not needed: the final image was reused


@dataclass(frozen=True)
class CacheEntry:
    """Where one stage's output lives in the registry."""

    repository: str  # host/namespace/cache/service/variant
    tag: str

    @classmethod
    def for_stage(cls, registry: str, service: str, variant: str, stage: str, key: str) -> CacheEntry:
        """The entry of ``stage`` with ``key`` under ``registry`` (``host[/namespace]``)."""
        return cls(f"{registry}/cache/{service}/{variant}", f"{stage}-{key[:48]}")

    @classmethod
    def for_image(cls, registry: str, service: str, variant: str, key: str) -> CacheEntry:
        """The content tag of a final image, in the service's own repository."""
        return cls(f"{registry}/{service}", f"{variant}-{key[:24]}")

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Hit:
    """A cache entry found in the registry: where it is, and what the runtime needs to reuse its layers."""

    reference: str  # by digest
    saved_seconds: float  # how long the stage took when it was built
    compressed_bytes: int
    layers: tuple[Mapping[str, Any], ...] = ()  # the manifest's layer descriptors
    config: Mapping[str, Any] = field(default_factory=dict)  # the image config (rootfs.diff_ids, config, history)


@dataclass(frozen=True)
class StageRecord:
    """One line of the cache report."""

    service: str
    variant: str
    stage: str
    key: str
    outcome: Outcome
    seconds: float = 0.0  # build time (built) or import time (hit)
    saved_seconds: float = 0.0
    pulled_bytes: int = 0
    pushed_bytes: int = 0
    export_seconds: float = 0.0
    warning: str = ""


def created_now() -> str:
    """The current time as the created label and image configs write it (RFC 3339, UTC, seconds)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def look_up_all(entries: Mapping[K, CacheEntry]) -> dict[K, Hit]:
    """Every entry looked up side by side; the hits, by the caller's own names."""
    hits: dict[K, Hit] = {}

    async def one(name: K, entry: CacheEntry) -> None:
        if (hit := await lookup(entry)) is not None:
            hits[name] = hit

    async with anyio.create_task_group() as tg:
        for name, entry in entries.items():
            tg.start_soon(one, name, entry)
    return hits


async def lookup(entry: CacheEntry) -> Hit | None:
    """The entry when the registry has it; None on a miss or any error (logged)."""
    return await interrupts.in_thread(functools.partial(_lookup, entry))


def _lookup(entry: CacheEntry) -> Hit | None:
    ref = Reference.parse(str(entry))
    registry = Registry(ref.registry, timeout=10.0)
    try:
        digest = registry.manifest_digest(ref.repository, entry.tag)
        if digest is None:
            return None
        manifest = json.loads(registry.get_manifest(ref.repository, digest))
        config = json.loads(registry.get_blob(ref.repository, manifest["config"]["digest"]))
    except (CargoholdError, KeyError, ValueError) as e:
        log.warning("cache: %s unreadable, treated as a miss (%s)", entry, e)
        return None
    labels = (config.get("config") or {}).get("Labels") or {}
    layers = tuple(manifest.get("layers", []))
    size = sum(layer.get("size", 0) for layer in layers)
    return Hit(str(ref.with_digest(digest)), float(labels.get(LABEL_SECONDS, 0.0)), size, layers, config)


def import_output(hit: Hit, path: str) -> dagger.Directory:
    """The cached output folder (lazy: pulled when a later step reads it)."""
    from dagger import dag  # noqa: PLC0415 - the SDK only where the engine is used (see reuse.py)

    return dag.container().from_(hit.reference).directory(path)


async def import_pulled(hit: Hit, path: str) -> dagger.Directory | None:
    """The cached output folder, pulled now; None when the engine cannot pull it whole (a miss, logged).

    The engine checks every layer against its digest: a corrupted or truncated entry fails the
    pull here, and the stage is built instead of failing the build.
    """
    return await _pulled(hit, import_output(hit, path))


async def import_image(hit: Hit) -> dagger.Container | None:
    """A whole-image entry (the runtime base), pulled now; None when the engine cannot pull it (logged)."""
    from dagger import dag  # noqa: PLC0415 - the SDK only where the engine is used

    return await _pulled(hit, dag.container().from_(hit.reference))


async def _pulled(hit: Hit, thing: T) -> T | None:
    import dagger  # noqa: PLC0415 - the SDK only where the engine is used

    try:
        await thing.sync()
    except dagger.QueryError as e:
        log.warning("cache: %s unreadable, treated as a miss (%s)", hit.reference, _first_line(str(e)))
        return None
    return thing


async def resolve_images(references: tuple[str, ...]) -> None:
    """Have the engine resolve each image (its manifest and config) side by side; raises for a missing one."""
    from dagger import dag  # noqa: PLC0415 - the SDK only where the engine is used

    async with anyio.create_task_group() as tg:
        for reference in dict.fromkeys(references):
            tg.start_soon(dag.container().from_(reference).sync)


def folder_image(path: str, output: dagger.Directory, apart: tuple[str, ...] = ()) -> dagger.Container:
    """A stage's folder as an image, at the path the runtime keeps it (what a folder entry is).

    One layer, or, with ``apart`` (globs under the folder), the rest first and then one layer per
    glob: the engine compresses the layers of an export side by side, so a folder whose bytes are
    mostly one huge file (torch's libtorch_cpu.so) exports in the time of its largest layer.
    """
    from dagger import dag  # noqa: PLC0415 - the SDK only where the engine is used

    image = dag.container().with_directory(path, output, exclude=list(apart))
    for glob in apart:
        image = image.with_directory(path, output, include=[glob])
    return image


async def export(entry: CacheEntry, image: dagger.Container, seconds: float, key: str) -> tuple[float, str]:
    """Push a stage's entry image; (seconds it took, warning or "") — never raises for registry trouble."""
    import dagger  # noqa: PLC0415 - the SDK only where the engine is used

    began = time.monotonic()
    created = created_now()
    image = (
        image.with_label(LABEL_CREATED, created).with_label(LABEL_SECONDS, f"{seconds:.2f}").with_label(LABEL_KEY, key)
    )
    try:
        published = await image.publish(str(entry))
    except dagger.QueryError as e:
        warning = f"cache export of {entry} failed, the build goes on: {_first_line(str(e))}"
        log.warning("%s", warning)
        return time.monotonic() - began, warning
    # The runtime image is assembled from these very layers: list them now, in the background,
    # so its facts report at the end of the build finds the listings ready.
    from cargohold.layer_listings import prefetch_entry  # noqa: PLC0415 - it reads LABEL_CREATED from here

    prefetch_entry(published)
    return time.monotonic() - began, ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:300]
