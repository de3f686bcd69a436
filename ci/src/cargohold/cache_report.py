"""The cache report of a run: per stage hit or miss, time saved, bytes pulled and pushed (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from cargohold.stage_cache import Outcome, StageRecord


def report_lines(records: Sequence[StageRecord]) -> list[str]:
    """A table a person reads, then the totals."""
    head = (
        f"{'image':<22} {'stage':<13} {'result':<8} {'time':>7} {'saved':>7} {'pulled':>9} {'pushed':>9} {'export':>7}"
    )
    return ["cache report:", head, *(_row(r) for r in _ordered(records)), totals_line(records)]


def _row(r: StageRecord) -> str:
    image = f"{r.service}:{r.variant}"
    timings = f"{r.seconds:>6.1f}s {r.saved_seconds:>6.1f}s"
    moved = f"{_mb(r.pulled_bytes):>9} {_mb(r.pushed_bytes):>9} {r.export_seconds:>6.1f}s"
    return f"{image:<22} {r.stage:<13} {r.outcome.value:<8} {timings} {moved}" + (
        f"  ! {r.warning}" if r.warning else ""
    )


def totals_line(records: Sequence[StageRecord]) -> str:
    """Hits, builds, reuses, time saved, bytes moved."""
    count = {o: sum(1 for r in records if r.outcome is o) for o in Outcome}
    saved = sum(r.saved_seconds for r in records if r.outcome in (Outcome.HIT, Outcome.REUSED))
    pulled = sum(r.pulled_bytes for r in records)
    pushed = sum(r.pushed_bytes for r in records)
    warnings = sum(1 for r in records if r.warning)
    return (
        f"cache: {count[Outcome.HIT]} stage hits, {count[Outcome.BUILT]} built, {count[Outcome.REUSED]} images reused, "
        f"{saved:.1f} s saved, {_mb(pulled)} pulled, {_mb(pushed)} pushed"
        + (f", {warnings} export warnings" if warnings else "")
    )


def report_json(records: Sequence[StageRecord]) -> list[dict[str, object]]:
    """The records as JSON-ready dicts."""
    return [asdict(r) | {"outcome": r.outcome.value} for r in _ordered(records)]


def _ordered(records: Sequence[StageRecord]) -> list[StageRecord]:
    order = {"heavy": 0, "dependencies": 1, "bake": 2, "build": 2, "runtime": 9}
    return sorted(records, key=lambda r: (r.service, r.variant, order.get(r.stage, 5)))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
