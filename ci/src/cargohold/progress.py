"""What a person sees while a run goes: a live table on a terminal, plain lines in a CI log.

The view is a span processor of the run's tracer (see ``telemetry``): a span
that starts is a task or stage that runs, one that ends has its result in its
attributes. Tasks the run will get to are listed as waiting until their span
starts. On a terminal the table redraws in place, and its last frame stays as
the run's summary table; elsewhere every start and end is one line on stderr.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

NS: Final = "cargohold"
_STYLE: Final = {
    "waiting": "dim", "running": "bold cyan", "passed": "green", "failed": "bold red", "skipped": "dim",
    "hit": "green", "built": "blue", "done": "",
}  # fmt: skip


@dataclass
class Row:
    """One task or stage as the view shows it."""

    name: str  # the span's name: "check backend:lint", "stage backend:cpu heavy", "service backend:cpu"
    state: str = "waiting"  # waiting, running, then passed/failed/skipped (checks), hit/built (stages), done
    started: float = 0.0
    seconds: float = 0.0
    note: str = ""


def ended_state(span: ReadableSpan) -> tuple[str, str]:
    """(state, note) of an ended span, from its attributes."""
    attributes = dict(span.attributes or {})
    if span.name.startswith("stage "):
        key = str(attributes.get(f"{NS}.cache.key", ""))[:12]
        return str(attributes.get(f"{NS}.cache.result", "done")), f"key {key}…" if key else ""
    if span.name.startswith("check "):
        return str(attributes.get(f"{NS}.task.status", "done")), str(attributes.get(f"{NS}.task.detail", ""))
    return "done", str(attributes.get(f"{NS}.image.outcome", ""))


class ProgressView(SpanProcessor):
    """The rows of the run, kept current from span starts and ends; plain lines when ``plain`` is a stream."""

    def __init__(self, expected: Sequence[str], plain: TextIO | None = None) -> None:
        self.rows: dict[str, Row] = {name: Row(name) for name in expected}
        self.plain = plain
        self._lock = threading.Lock()
        if plain is not None and expected:
            self._say(f"waiting: {', '.join(n.partition(' ')[2] for n in expected)}")

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:  # noqa: ARG002 - the SDK's signature
        """A span started: its row runs."""
        if span.parent is None:  # the run itself
            return
        with self._lock:
            row = self.rows.setdefault(span.name, Row(span.name))
            row.state, row.started = "running", time.monotonic()
        self._say(f"started  {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        """A span ended: its row gets its result."""
        if span.parent is None:
            return
        state, note = ended_state(span)
        seconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        with self._lock:
            row = self.rows.setdefault(span.name, Row(span.name))
            row.state, row.seconds, row.note = state, seconds, note
            if span.name.startswith("service "):  # its checks that never started will not: skipped
                service = span.name.removeprefix("service ").partition(":")[0]
                for other in self.rows.values():
                    if other.state == "waiting" and other.name.startswith(f"check {service}:"):
                        other.state, other.note = "skipped", "not run (identical inputs, or an earlier failure)"
        self._say(f"{state:<8} {span.name} ({seconds:.1f} s){'  ' + note if note else ''}")

    def _say(self, line: str) -> None:
        if self.plain is not None:
            self.plain.write(f"progress: {line}\n")
            self.plain.flush()

    def table(self) -> Table:
        """The rows now: what runs (with its time so far), what waits, what came from the cache."""
        with self._lock:
            rows = list(self.rows.values())
        counts = {s: sum(1 for r in rows if r.state == s) for s in ("running", "waiting", "hit", "failed")}
        title = (f"{counts['running']} running · {counts['waiting']} waiting · {counts['hit']} from the cache"
                 + (f" · {counts['failed']} failed" if counts["failed"] else ""))  # fmt: skip
        table = Table(title=title, title_justify="left", expand=False, show_edge=False)
        for column, justify in (("task", "left"), ("state", "left"), ("time", "right"), ("note", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        now = time.monotonic()
        for row in sorted(rows, key=_order):
            seconds = now - row.started if row.state == "running" else row.seconds
            time_text = f"{seconds:.1f} s" if row.state != "waiting" else ""
            table.add_row(row.name.partition(" ")[2], Text(row.state, _STYLE.get(row.state, "")), time_text,
                          Text(row.note[:70], "dim"))  # fmt: skip
        return table

    def __rich__(self) -> RenderableType:
        return self.table()


_CHECKS: Final = ("lint", "test", "build")


def _order(row: Row) -> tuple[str, int, int, str]:
    """A service's row, its stages, then its checks (lint, test, build); integration last."""
    kind, _, rest = row.name.partition(" ")
    service = rest.split(":")[0].split(" ")[0] if kind != "check" or ":" in rest else "~"
    check = rest.rpartition(":")[2]
    return (
        service,
        {"service": 0, "stage": 1, "check": 2}.get(kind, 3),
        _CHECKS.index(check) if check in _CHECKS else 9,
        rest,
    )


@contextmanager
def progress_view(expected: Sequence[str], *, live: bool) -> Iterator[ProgressView]:
    """The view for one run: a live table when ``live`` (a terminal), else plain lines on stderr."""
    if not live:
        yield ProgressView(expected, plain=sys.stderr)
        return
    view = ProgressView(expected)
    console = Console(stderr=True)
    with Live(view, console=console, refresh_per_second=4, transient=False, redirect_stderr=True), _logs_to(sys.stderr):
        yield view


@contextmanager
def _logs_to(stream: TextIO) -> Iterator[None]:
    """Point the log handlers at ``stream`` (the live view's stderr, which prints above the table)."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    old = [h.setStream(stream) for h in handlers]
    try:
        yield
    finally:
        for handler, previous in zip(handlers, old, strict=True):
            if previous is not None:
                handler.setStream(previous)


def terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal (not a CI log, not a pipe)."""
    return stream.isatty()
