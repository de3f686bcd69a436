"""OpenTelemetry traces of a run: one tracer provider per run, one span tree, a JSON trace file, OTLP when asked.

The tree of a ``ci`` run::

    ci                                   counts of passed, failed, skipped; status
    ├── service backend:cpu              service, variant, image key (and outcome, for a reused image)
    │   ├── stage backend:cpu heavy      cache.result (hit, built), cache.key, saved seconds, bytes moved
    │   ├── check backend:lint           task.status, task.seconds, task.detail (ERROR status when it failed)
    │   └── check backend:build          image digest and sizes, budget; events per layer, path, finding
    │       └── stage backend:cpu runtime
    └── check integration

Spans are live (real start and end times; the progress view watches them
start and end). The file is OTLP/JSON (``resourceSpans``, hex ids), so any
OpenTelemetry tool reads it; ``report.py`` turns it into Markdown and HTML. It
is always written. Spans go to a collector too when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set. ``TRACEPARENT`` (W3C trace context) carries the run's root span to the
Dagger session, so the engine's own trace hangs under it; a ``TRACEPARENT``
already set by a caller becomes the root span's parent.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]  # protobuf ships no stubs
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from cargohold.image_facts import ImageFacts
from cargohold.results import TaskKind, TaskResult, TaskStatus
from cargohold.stage_cache import StageRecord

P = ParamSpec("P")
T = TypeVar("T")
Attributes = Mapping[str, AttributeValue]

DEFAULT_TRACE: Final = Path("reports/trace.json")
OTLP_VARS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
NS: Final = "cargohold"


@dataclass
class _Collector(SpanExporter):
    """Every ended span of the run, for the trace file."""

    spans: list[ReadableSpan] = field(default_factory=list)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


@dataclass
class _Names(SpanProcessor):
    """The run's spans by name, so results without a task of their own find their service."""

    by_name: dict[str, Span] = field(default_factory=dict)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:  # noqa: ARG002 - the SDK's signature
        self.by_name[span.name] = span


@dataclass
class Tracing:
    """One run's tracer, its root span and where its spans go."""

    provider: TracerProvider
    root: Span
    path: Path
    collector: _Collector
    names: _Names

    @property
    def tracer(self) -> trace.Tracer:
        """The run's tracer."""
        return self.provider.get_tracer(NS)


_active: Tracing | None = None


def otlp_configured(environ: Mapping[str, str]) -> bool:
    """True when the standard OTLP endpoint variables ask for an export."""
    return any(environ.get(name) for name in OTLP_VARS)


@contextmanager
def traced_run(
    name: str, path: Path, attributes: Attributes, listeners: Sequence[SpanProcessor] = ()
) -> Iterator[Tracing]:
    """The run's root span, current for the whole run; the trace file is written when it ends."""
    global _active  # noqa: PLW0603 - one run per process at a time; the hooks find it here
    provider = TracerProvider(resource=Resource.create({"service.name": NS}))
    collector, names = _Collector(), _Names()
    provider.add_span_processor(SimpleSpanProcessor(collector))
    provider.add_span_processor(names)
    for listener in listeners:
        provider.add_span_processor(listener)
    if otlp_configured(os.environ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    outer = os.environ.get("TRACEPARENT")
    parent = propagate.extract({"traceparent": outer}) if outer else None
    span_attributes = {f"{NS}.command": name, **attributes}
    try:
        with provider.get_tracer(NS).start_as_current_span(name, context=parent, attributes=span_attributes) as root:
            assert isinstance(root, Span)  # noqa: S101 - the SDK's tracer makes SDK spans
            tracing = Tracing(provider, root, path, collector, names)
            os.environ["TRACEPARENT"] = traceparent(root)
            _active = tracing
            try:
                yield tracing
            finally:
                _active = None
                _restore("TRACEPARENT", outer)
    finally:  # a run that failed part-way still leaves its trace
        provider.shutdown()  # flushes the OTLP export, if any
        write_trace(path, collector.spans)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def traceparent(span: trace.Span) -> str:
    """The W3C ``traceparent`` of ``span``."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]


@contextmanager
def span(name: str, attributes: Attributes | None = None) -> Iterator[trace.Span]:
    """A child of the current span in the active run; a no-op span when no run is traced."""
    if _active is None:
        yield trace.INVALID_SPAN
        return
    with _active.tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


async def traced(
    name: str, attributes: Attributes, work: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``await work(*args)`` inside a span (for ``start_soon`` and awaited calls alike)."""
    with span(name, attributes):
        return await work(*args, **kwargs)


def annotate(attributes: Attributes) -> None:
    """Add attributes to the current span of the active run (outside one, e.g. under ``dagger call``: nothing)."""
    if _active is not None:
        trace.get_current_span().set_attributes(attributes)


# ---- what the hooks record -------------------------------------------------------------------------


def target_attributes(service: str, variant: str, image_key: str) -> Attributes:
    """The attributes of a service span."""
    return {f"{NS}.service": service, f"{NS}.variant": variant, f"{NS}.image.key": image_key}


def stage_attributes(service: str, variant: str, stage: str) -> Attributes:
    """The attributes a stage span starts with (the cache result comes with its record)."""
    return {f"{NS}.service": service, f"{NS}.variant": variant, f"{NS}.stage": stage}


def check_attributes(name: str, kind: TaskKind) -> Attributes:
    """The attributes a check span starts with (its status comes with its result)."""
    return {f"{NS}.task": name, f"{NS}.task.kind": kind.value}


def annotate_stage(record: StageRecord) -> None:
    """A stage's cache result and key on the current (stage) span."""
    annotate(
        {
            f"{NS}.cache.result": record.outcome.value,
            f"{NS}.cache.key": record.key,
            f"{NS}.cache.seconds": record.seconds,
            f"{NS}.cache.saved_seconds": record.saved_seconds,
            f"{NS}.cache.pulled_bytes": record.pulled_bytes,
            f"{NS}.cache.pushed_bytes": record.pushed_bytes,
            f"{NS}.cache.export_seconds": record.export_seconds,
            **({f"{NS}.cache.warning": record.warning} if record.warning else {}),
        }
    )


def annotate_result(result: TaskResult, current: trace.Span | None = None) -> None:
    """A task's status, duration and detail on its span; a failure sets the span's status to ERROR."""
    if current is None and _active is None:
        return
    target = current or trace.get_current_span()
    target.set_attributes(
        {
            f"{NS}.task.status": result.status.value,
            f"{NS}.task.seconds": round(result.seconds, 3),
            f"{NS}.task.detail": result.detail,
            **({f"{NS}.task.log_tail": result.log_tail} if result.log_tail else {}),
        }
    )
    ok = result.status is not TaskStatus.FAILED
    target.set_status(Status(StatusCode.OK) if ok else Status(StatusCode.ERROR, result.detail))


def annotate_image(reference: str, outcome: str, compressed: int, budget: int | None) -> None:
    """An image's reference, digest, compressed size and budget on the current span."""
    annotate(
        {
            f"{NS}.image.reference": reference,
            f"{NS}.image.digest": reference.rpartition("@")[2] if "@" in reference else "",
            f"{NS}.image.outcome": outcome,
            f"{NS}.image.compressed_bytes": compressed,
            **({f"{NS}.image.budget_bytes": budget} if budget is not None else {}),
        }
    )


def annotate_facts(facts: ImageFacts, reference: str) -> None:
    """A built image's facts on the current span: sizes as attributes; layers, paths and findings as events."""
    if _active is None:
        return
    annotate_image(reference, "built", facts.compressed_size, facts.budget)
    current = trace.get_current_span()
    current.set_attribute(f"{NS}.image.uncompressed_bytes", facts.uncompressed_size)
    current.set_attribute(f"{NS}.image.findings", len(facts.findings))
    current.set_attribute(f"{NS}.image.user", facts.user)
    for layer in facts.layers:
        current.add_event("image.layer", {"digest": layer.digest, "compressed_bytes": layer.compressed_size,
                                          "uncompressed_bytes": layer.uncompressed_size,
                                          "created_by": layer.created_by[:300]})  # fmt: skip
    for path, size in facts.largest_paths:
        current.add_event("image.path", {"path": path, "bytes": size})
    for finding in facts.findings:
        current.add_event("image.finding", {"kind": finding.kind.value, "message": finding.message,
                                            "paths": list(finding.paths), "bytes": finding.bytes})  # fmt: skip


def finish_run(results: Sequence[TaskResult]) -> None:
    """The run's counts and status on the root span; a zero-length span for each task that never ran.

    A task skipped for identical inputs (or stopped by ``--fail-fast``) has no span of its own: it
    gets one under its service's span, or the root, so the tree lists every task of the run.
    """
    if _active is None:
        return
    tracing, now = _active, time.time_ns()
    for result in results:
        if f"check {result.name}" in tracing.names.by_name:
            continue
        service = result.name.partition(":")[0]
        parent = next((s for n, s in tracing.names.by_name.items() if n.startswith(f"service {service}:")), None)
        at = (parent.end_time if parent is not None else None) or now  # inside its parent's time
        context = trace.set_span_in_context(parent or tracing.root)
        attributes = check_attributes(result.name, result.kind)
        empty = tracing.tracer.start_span(f"check {result.name}", context, attributes=attributes, start_time=at)
        annotate_result(result, empty)
        empty.end(end_time=at)
    counts = {s: sum(1 for r in results if r.status is s) for s in TaskStatus}
    tracing.root.set_attributes({f"{NS}.{s.value}": n for s, n in counts.items()})
    failed = counts[TaskStatus.FAILED]
    tracing.root.set_status(Status(StatusCode.ERROR, f"{failed} failed") if failed else Status(StatusCode.OK))


# ---- the trace file ----------------------------------------------------------------------------------


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Spans as OTLP/JSON: the protobuf's JSON mapping, with trace and span ids in hex as the spec says."""
    body: dict[str, Any] = MessageToDict(encode_spans(spans)) if spans else {"resourceSpans": []}
    for resource in body.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for item in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
    return body


def write_trace(path: Path, spans: Sequence[ReadableSpan]) -> Path:
    """The trace file, in start order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    path.write_text(json.dumps(otlp_json(ordered), indent=1) + "\n")
    return path
