"""Reusing a final image for identical inputs: registry calls only, no engine and no Dagger SDK.

This is the whole of a run where nothing changed, so it imports nothing that
starts or talks to an engine: ``build`` with no changes answers in the time of
a few registry round trips.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cargohold import interrupts
from cargohold.errors import CargoholdError
from cargohold.keys import BuildTarget, StageKeys
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.stage_cache import CacheEntry, Outcome, StageRecord, lookup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushedImage:
    """An image that was built (or reused for identical inputs) and is in the registry."""

    service: str
    variant: str
    reference: str  # by digest
    outcome: str  # built, or reused
    key: str  # the content key of the image's inputs


@dataclass
class BuildRun:
    """Everything a build produced: the images and the cache report."""

    images: list[PushedImage]
    records: list[StageRecord]


async def reuse_existing(
    target: BuildTarget, keys: StageKeys, registry: str, records: list[StageRecord]
) -> PushedImage | None:
    """The final image for identical inputs, with its moving tag pointed at it; None when there is none."""
    entry = CacheEntry.for_image(registry, target.service, target.variant, keys.image)
    if (existing := await lookup(entry)) is None:
        return None
    records += [StageRecord(target.service, target.variant, s, k, Outcome.SKIPPED) for s, k in keys.stages.items()]
    records.append(
        StageRecord(target.service, target.variant, "runtime", keys.image, Outcome.REUSED,
                    saved_seconds=existing.saved_seconds)
    )  # fmt: skip
    await move_tag(existing.reference, f"{registry}/{target.service}:{target.variant}")
    log.info("%s: reused %s (identical inputs)", target.label, existing.reference)
    return PushedImage(target.service, target.variant, existing.reference, Outcome.REUSED.value, keys.image)


async def reuse_all(keys: Mapping[BuildTarget, StageKeys], registry: str) -> BuildRun:
    """Reuse every target's final image (the plan said all exist); no engine."""
    run = BuildRun([], [])
    for target, k in keys.items():
        image = await reuse_existing(target, k, registry, run.records)
        if image is None:
            msg = f"{target.label}: its image vanished from {registry} between plan and build"
            raise CargoholdError(msg, "run the build again")
        run.images.append(image)
    return run


async def move_tag(reference: str, tag_ref: str) -> None:
    """Point ``tag_ref`` at the manifest ``reference`` names (same repository; no pull, no push of blobs)."""
    await interrupts.in_thread(functools.partial(_retag, reference, tag_ref))


def _retag(reference: str, tag_ref: str) -> None:
    ref, target = Reference.parse(reference), Reference.parse(tag_ref)
    registry = Registry(ref.registry)
    manifest = registry.get_manifest(ref.repository, str(ref.digest))
    media_type = json.loads(manifest).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
    registry.put_manifest(target.repository, str(target.tag), manifest, media_type)
