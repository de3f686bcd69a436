"""The plan: what a run will build, reuse from the cache, or skip, and why — before any engine starts.

Keys come from the host's files (``host_inputs``); whether an image or a
stage is already there is a registry lookup. So a fresh CI runner learns in
about a second that there is nothing to do, and the CI matrix lists only the
services that need a job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cargohold.errors import CargoholdError, RegistryUnreachableError
from cargohold.keys import BuildTarget, StageKeys
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.stage_cache import CacheEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagePlan:
    """One stage: its key and whether the registry cache has it."""

    stage: str
    key: str
    cached: bool


@dataclass(frozen=True)
class TargetPlan:
    """One image: build or reuse, and why."""

    target: BuildTarget
    image_key: str
    action: str  # "build" or "reuse"
    reason: str
    stages: tuple[StagePlan, ...]
    changes: tuple[str, ...] = ()  # why change detection says it is affected (with --since)


@dataclass(frozen=True)
class Plan:
    """The whole run's plan."""

    targets: tuple[TargetPlan, ...]
    registry: str
    cache_registry: str
    keys: Mapping[BuildTarget, StageKeys]

    @property
    def all_reused(self) -> bool:
        """True when nothing needs building: no engine is needed at all."""
        return all(t.action == "reuse" for t in self.targets)

    def lines(self) -> list[str]:
        """A table a person reads."""
        out = [f"plan (registry {self.registry}):"]
        for t in self.targets:
            out.append(f"  {t.target.label:<22} {t.action.upper():<6} {t.reason}")
            out += [f"      {s.stage:<13} {s.key[:16]}  {'cached' if s.cached else 'to build'}" for s in t.stages]
            out += [f"      changed: {c}" for c in t.changes]
        build = sum(1 for t in self.targets if t.action == "build")
        out.append(f"plan: {build} to build, {len(self.targets) - build} reused (identical inputs)")
        return out

    def as_json(self) -> dict[str, object]:
        """The plan with a CI matrix of the images that need a job."""
        return {
            "registry": self.registry,
            "targets": [
                {
                    "service": t.target.service, "variant": t.target.variant, "action": t.action,
                    "reason": t.reason, "image_key": t.image_key, "changes": list(t.changes),
                    "stages": [{"stage": s.stage, "key": s.key, "cached": s.cached} for s in t.stages],
                }
                for t in self.targets
            ],
            "matrix": {"include": [_matrix_row(t) for t in self.targets if t.action == "build"]},
            "reused": [t.target.label for t in self.targets if t.action == "reuse"],
        }  # fmt: skip


def decide(
    keys: Mapping[BuildTarget, StageKeys],
    existing: Mapping[str, bool],
    registry: str,
    changes: Mapping[str, Sequence[str]] | None = None,
    cache_registry: str | None = None,
) -> Plan:
    """The plan from keys and what the registry holds (``existing``: reference → present). Pure."""
    cache = cache_registry or registry
    plans = []
    for target, k in keys.items():
        image = existing.get(image_reference(registry, target, k), False)
        stages = tuple(StagePlan(s, key, existing.get(stage_reference(cache, target, s, key), False))
                       for s, key in k.stages.items())  # fmt: skip
        if image:
            action, reason = "reuse", f"identical inputs already in the registry (image key {k.image[:16]})"
        else:
            cached = [s.stage for s in stages if s.cached]
            reason = "no image for these inputs" + (f"; from cache: {', '.join(cached)}" if cached else "")
            action = "build"
        plans.append(
            TargetPlan(target, k.image, action, reason, stages, tuple((changes or {}).get(target.service, ())))
        )
    return Plan(tuple(plans), registry, cache, keys)


def image_reference(registry: str, target: BuildTarget, keys: StageKeys) -> str:
    """The content tag of a target's final image."""
    return str(CacheEntry.for_image(registry, target.service, target.variant, keys.image))


def stage_reference(registry: str, target: BuildTarget, stage: str, key: str) -> str:
    """The cache entry of one stage."""
    return str(CacheEntry.for_stage(registry, target.service, target.variant, stage, key))


def lookup_all(references: Sequence[str]) -> dict[str, bool]:
    """Which references exist; an unreachable registry means none of its references do (said once, not raised).

    A registry that did not answer after its retries is not asked again in this call: asking about
    each of twenty cache entries would only repeat the same wait twenty times.
    """
    found = {}
    unreachable: set[str] = set()
    for text in references:
        ref = Reference.parse(text)
        if ref.registry in unreachable:
            found[text] = False
            continue
        try:
            found[text] = Registry(ref.registry, timeout=5.0).manifest_digest(ref.repository, str(ref.tag)) is not None
        except RegistryUnreachableError as e:
            log.warning("%s; counting every entry there as a miss", e)
            unreachable.add(ref.registry)
            found[text] = False
        except CargoholdError:
            found[text] = False
    return found


def references_for(
    keys: Mapping[BuildTarget, StageKeys], registry: str, cache_registry: str | None = None
) -> list[str]:
    """Every reference the plan needs looked up."""
    refs = []
    for target, k in keys.items():
        refs.append(image_reference(registry, target, k))
        refs += [stage_reference(cache_registry or registry, target, s, key) for s, key in k.stages.items()]
    return refs


def _matrix_row(t: TargetPlan) -> dict[str, str]:
    return {"service": t.target.service, "variant": t.target.variant}
