"""Reports of a run, from its trace file alone (pure): the span tree, Markdown for a CI job summary.

``load_trace`` reads the OTLP/JSON file that ``telemetry`` writes into plain
spans; ``tree_problems`` says whether they form one tree; ``checks``,
``stages`` and ``images`` pick out what a person reads; ``markdown`` renders
them for ``$GITHUB_STEP_SUMMARY``. The HTML page is ``report_html.html``.
An image's facts ride in its span's events and come back as the
``ImageFacts`` of ``image_facts``, so sizes and findings are computed once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cargohold.errors import CargoholdError
from cargohold.image_facts import Finding, FindingKind, ImageFacts, LayerFacts, format_size

NS: Final = "cargohold"
TOLERANCE: Final = 0.001  # seconds: the trace file keeps nanoseconds; float seconds round


@dataclass(frozen=True)
class Event:
    """A span event: an image layer, a largest path, a finding."""

    name: str
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class SpanData:
    """One span of the trace file; times in seconds since the epoch."""

    span_id: str
    parent_id: str
    name: str
    start: float
    end: float
    status: str  # "ok", "error" or "unset"
    attributes: Mapping[str, Any]
    events: tuple[Event, ...] = ()

    @property
    def seconds(self) -> float:
        """The span's duration."""
        return self.end - self.start

    def attr(self, key: str, default: Any = None) -> Any:  # noqa: ANN401 - attribute values are of several types
        """``cargohold.<key>``."""
        return self.attributes.get(f"{NS}.{key}", default)


@dataclass(frozen=True)
class Trace:
    """The spans of one run, in start order."""

    spans: tuple[SpanData, ...]

    @property
    def root(self) -> SpanData:
        """The span whose parent is not in the file (the run)."""
        ids = {s.span_id for s in self.spans}
        return next(s for s in self.spans if s.parent_id not in ids)

    def children(self, parent: SpanData) -> list[SpanData]:
        """The spans directly under ``parent``."""
        return [s for s in self.spans if s.parent_id == parent.span_id]

    def kind(self, prefix: str) -> list[SpanData]:
        """The spans whose name starts with ``prefix`` (``check``, ``stage``, ``service``)."""
        return [s for s in self.spans if s.name.startswith(f"{prefix} ")]


# ---- reading the file ------------------------------------------------------------------------------


def load_trace(path: Path) -> Trace:
    """The trace file at ``path``; CargoholdError (exit 2, one line) when it is missing or not a trace."""
    try:
        body = json.loads(path.read_text())
        trace = parse_trace(body)
    except (OSError, ValueError, KeyError, TypeError) as e:
        msg = f"{path}: no readable trace ({e.__class__.__name__}: {str(e)[:120]})"
        raise CargoholdError(msg, "run './dev ci' first (it writes reports/trace.json), or pass --trace") from e
    if not trace.spans:
        raise CargoholdError(f"{path}: the trace has no spans", "run './dev ci' again")
    return trace


def parse_trace(body: Mapping[str, Any]) -> Trace:
    """OTLP/JSON (``resourceSpans`` → ``scopeSpans`` → ``spans``) → plain spans in start order."""
    spans = [
        _span(item)
        for resource in body["resourceSpans"]
        for scope in resource.get("scopeSpans", [])
        for item in scope.get("spans", [])
    ]
    return Trace(tuple(sorted(spans, key=lambda s: (s.start, s.name))))


def _span(item: Mapping[str, Any]) -> SpanData:
    status = {"STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error"}.get(item.get("status", {}).get("code", ""), "unset")
    events = tuple(Event(e["name"], _attributes(e.get("attributes", []))) for e in item.get("events", []))
    return SpanData(
        item["spanId"], item.get("parentSpanId", ""), item["name"], int(item["startTimeUnixNano"]) / 1e9,
        int(item["endTimeUnixNano"]) / 1e9, status, _attributes(item.get("attributes", [])), events,
    )  # fmt: skip


def _attributes(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item["value"]) for item in items}


def _value(value: Mapping[str, Any]) -> Any:  # noqa: ANN401 - OTLP's AnyValue
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return None


# ---- what a person reads -----------------------------------------------------------------------------


def tree_problems(trace: Trace) -> list[str]:
    """Why the spans are not one tree with every child inside its parent's time; [] when they are."""
    ids = {s.span_id: s for s in trace.spans}
    roots = [s for s in trace.spans if s.parent_id not in ids]
    problems = [f"{len(roots)} roots: {', '.join(s.name for s in roots)}"] if len(roots) != 1 else []
    for s in trace.spans:
        parent = ids.get(s.parent_id)
        if parent is not None and (s.start < parent.start - TOLERANCE or s.end > parent.end + TOLERANCE):
            problems.append(f"{s.name} ({s.start:.3f} to {s.end:.3f}) is outside {parent.name}")
        if s.end < s.start:
            problems.append(f"{s.name} ends before it starts")
    return problems


def checks(trace: Trace) -> list[SpanData]:
    """The check spans (lint, test, build per service; integration), services in order, then by kind."""
    order = {"lint": 0, "test": 1, "build": 2, "integration": 3}

    def key(s: SpanData) -> tuple[bool, str, int]:
        kind = str(s.attr("task.kind", ""))
        return kind == "integration", str(s.attr("task", "")).partition(":")[0], order.get(kind, 9)

    return sorted(trace.kind("check"), key=key)


def stages(trace: Trace) -> list[SpanData]:
    """The stage spans, by image then start."""
    return sorted(trace.kind("stage"), key=lambda s: (s.attr("service", ""), s.attr("variant", ""), s.start))


def images(trace: Trace) -> list[tuple[str, ImageFacts]]:
    """(service:variant, facts) of every image the run built or reused, from the spans that carry one."""
    found: dict[str, ImageFacts] = {}
    for s in trace.spans:
        if s.attr("image.reference") is None:
            continue
        label = _image_label(trace, s)
        if label not in found or s.events:  # a built image's facts win over a size-only record
            found[label] = facts_of(s)
    return sorted(found.items())


def _image_label(trace: Trace, s: SpanData) -> str:
    ids = {x.span_id: x for x in trace.spans}
    node: SpanData | None = s
    while node is not None and node.attr("variant") is None:
        node = ids.get(node.parent_id)
    if node is None:
        return str(s.attr("task", s.name)).partition(":")[0]
    return f"{node.attr('service')}:{node.attr('variant')}"


def facts_of(s: SpanData) -> ImageFacts:
    """The image facts a span carries (size-only for an image reused from an earlier run)."""
    layers = tuple(
        LayerFacts(e.attributes["digest"], e.attributes["compressed_bytes"], e.attributes["uncompressed_bytes"],
                   e.attributes.get("created_by", ""), ())
        for e in s.events if e.name == "image.layer"
    )  # fmt: skip
    paths = tuple((e.attributes["path"], e.attributes["bytes"]) for e in s.events if e.name == "image.path")
    findings = tuple(
        Finding(FindingKind(e.attributes["kind"]), e.attributes["message"], tuple(e.attributes.get("paths", [])),
                e.attributes.get("bytes", 0))
        for e in s.events if e.name == "image.finding"
    )  # fmt: skip
    return ImageFacts(
        s.attr("image.reference"), s.attr("image.digest", ""), s.attr("image.compressed_bytes", 0),
        s.attr("image.uncompressed_bytes", 0), layers, paths, s.attr("image.user", ""), s.attr("image.budget_bytes"),
        findings,
    )  # fmt: skip


def counts(trace: Trace) -> dict[str, int]:
    """Passed, failed and skipped tasks."""
    return {status: sum(1 for s in checks(trace) if s.attr("task.status") == status)
            for status in ("passed", "failed", "skipped")}  # fmt: skip


def passed(trace: Trace) -> bool:
    """True when no task failed and the run did not end in an error."""
    return not counts(trace)["failed"] and trace.root.status != "error"


def headline(trace: Trace) -> str:
    """``ci passed: 7 passed, 0 failed, 0 skipped in 106.6 s``."""
    n = counts(trace)
    verdict = "passed" if passed(trace) else "failed"
    return (
        f"{trace.root.name} {verdict}: {n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped "
        f"in {trace.root.seconds:.1f} s"
    )


def budget_verdict(facts: ImageFacts) -> str:
    """``OK``, ``OVER by 12.0 MB`` or ``no budget``."""
    if facts.budget is None:
        return "no budget"
    return f"OVER by {format_size(facts.compressed_size - facts.budget)}" if facts.over_budget else "OK"


# ---- Markdown ------------------------------------------------------------------------------------------

_ICON: Final = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}


def markdown(trace: Trace) -> str:
    """The run as a CI job summary: tasks, cache, images, and each failure's output."""
    lines = [f"## {_ICON['passed' if passed(trace) else 'failed']} {headline(trace)}", "",
             "| task | status | time | detail |", "|---|---|---:|---|"]  # fmt: skip
    for c in checks(trace):
        status = c.attr("task.status", "?")
        lines.append(f"| {c.attr('task')} | {_ICON.get(status, '')} {status} | {c.seconds:.1f} s | "
                     f"{_cell(c.attr('task.detail', ''))} |")  # fmt: skip
    if stage_spans := stages(trace):
        lines += ["", "### Cache", "", "| image | stage | result | time | saved | key |", "|---|---|---|---:|---:|---|"]
        lines += [f"| {s.attr('service')}:{s.attr('variant')} | {s.attr('stage')} | {s.attr('cache.result', '?')} | "
                  f"{s.seconds:.1f} s | {s.attr('cache.saved_seconds', 0.0):.1f} s | "
                  f"`{str(s.attr('cache.key', ''))[:12]}` |" for s in stage_spans]  # fmt: skip
    if found := images(trace):
        lines += ["", "### Images", "", "| image | compressed | uncompressed | budget | verdict | findings |",
                  "|---|---:|---:|---:|---|---|"]  # fmt: skip
        lines += [_image_row(label, f) for label, f in found]
    for c in checks(trace):
        if c.attr("task.status") == "failed" and c.attr("task.log_tail"):
            lines += ["", f"<details><summary>{c.attr('task')}: {_cell(c.attr('task.detail', ''))}</summary>", "",
                      "```", c.attr("task.log_tail"), "```", "</details>"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _image_row(label: str, f: ImageFacts) -> str:
    budget = format_size(f.budget) if f.budget is not None else "—"
    uncompressed = format_size(f.uncompressed_size) if f.layers else "—"
    kinds = ", ".join(x.kind.value for x in f.findings) or ("none" if f.layers else "— (reused)")
    return f"| {label} | {format_size(f.compressed_size)} | {uncompressed} | {budget} | {budget_verdict(f)} | {kinds} |"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
