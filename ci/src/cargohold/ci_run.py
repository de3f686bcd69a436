"""What a CI run is, without the engine: its options and results, its markers, and the run that needs no engine.

When every image, its checks and the integration pass are already recorded in
the registry, ``ci`` answers from here alone: registry calls, no Dagger
session, and no import of the Dagger SDK (it costs seconds;
tests/unit/test_lazy_sdk.py holds that line). The engine-side run, which
shares these types, is in pipeline.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cargohold import telemetry
from cargohold.config import Config
from cargohold.image_checks import image_facts, size_against_budget
from cargohold.image_facts import FindingKind
from cargohold.keys import SourceTree
from cargohold.results import TaskKind, TaskResult, TaskStatus
from cargohold.reuse import BuildRun, PushedImage
from cargohold.stage_cache import CacheEntry, StageRecord

IDENTICAL: Final = "skipped: identical inputs (already verified)"


@dataclass(frozen=True)
class CiOptions:
    """What to run."""

    only: frozenset[TaskKind] = frozenset(TaskKind)
    fail_fast: bool = False

    def per_target(self) -> list[TaskKind]:
        """The selected tasks every target runs, in order (integration runs once, after them all)."""
        return [k for k in (TaskKind.LINT, TaskKind.TEST, TaskKind.BUILD) if k in self.only]


@dataclass
class CiRun:
    """Everything a CI run produced."""

    results: list[TaskResult] = field(default_factory=list)
    images: dict[str, PushedImage] = field(default_factory=dict)  # service → image
    records: list[StageRecord] = field(default_factory=list)
    junit_files: dict[str, str] = field(default_factory=dict)  # name → XML text from inside the engine


def skipped(name: str, kind: TaskKind) -> TaskResult:
    """The green result of a task that identical inputs already passed."""
    return TaskResult(name, kind, TaskStatus.SKIPPED, detail=IDENTICAL)


def checked_marker(cache_registry: str, service: str, variant: str, image_key: str) -> CacheEntry:
    """Where "lint and unit tests passed for exactly these inputs" is recorded."""
    return CacheEntry(f"{cache_registry}/cache/{service}/{variant}", f"checked-{image_key[:48]}")


def integration_marker(cache_registry: str, tree: SourceTree, image_keys: dict[str, str], config: Config) -> CacheEntry:
    """Where a pass of this suite against exactly these images is recorded."""
    body = {"suite": tree.digest(), "images": image_keys, "postgres": config.images.postgres,
            "integration": config.integration.model_dump() if config.integration else None}  # fmt: skip
    key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return CacheEntry(f"{cache_registry}/cache/integration", f"passed-{key[:48]}")


async def over_budget(config: Config, image: PushedImage) -> str:
    """A reused image against today's budget (the budget is not part of the key): why it fails, or "".

    Within budget, the manifest alone says so. Over it, the image's facts are read too (layer
    listings: cached on disk, else downloaded once), so the failure names the largest layers and paths.
    """
    size, budget = await size_against_budget(config, image)
    telemetry.annotate_image(image.reference, image.outcome, size, budget)
    if budget is None or size <= budget:
        return ""
    facts = await image_facts(config, image)
    telemetry.annotate_facts(facts, image.reference)
    why = next((f.message for f in facts.findings if f.kind is FindingKind.OVER_BUDGET), "")
    paths = ", ".join(f"{path} ({n / 1e6:.1f} MB)" for path, n in facts.largest_paths[:5])
    sizes = f"{size / 1e6:.1f} MB compressed, budget {budget / 1e6:.1f} MB"
    return f"over its budget: {sizes}; {why}; largest paths: {paths}"


async def verified_run(config: Config, built: BuildRun, options: CiOptions) -> CiRun:
    """The run when every image, its checks and the integration pass already exist: green skips.

    Only the budget is checked again (it is not part of the key): a reused image over today's
    budget fails its build task.
    """
    run = CiRun(images={image.service: image for image in built.images}, records=built.records)
    for image in built.images:
        attributes = telemetry.target_attributes(image.service, image.variant, image.key)
        with telemetry.span(f"service {image.service}:{image.variant}", attributes):
            for kind in options.per_target():
                over = await over_budget(config, image) if kind is TaskKind.BUILD else ""
                status = TaskStatus.FAILED if over else TaskStatus.SKIPPED
                run.results.append(TaskResult(f"{image.service}:{kind.value}", kind, status, detail=over or IDENTICAL))
    if TaskKind.INTEGRATION in options.only:
        run.results.append(skipped("integration", TaskKind.INTEGRATION))
    return run


def write_junit(path: Path, xml: str) -> Path:
    """Write a JUnit file on the host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml)
    return path
