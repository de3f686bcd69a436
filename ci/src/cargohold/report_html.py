"""The HTML report of a run (pure): one self-contained page, inline CSS and SVG, no script, no external asset.

- **Timeline:** every span on its own lane under its parent (service → stages
  and checks), on one time axis, so the parallelism shows as overlapping bars.
  Above it, how many stages and checks ran at once. Cache hits are green and
  say ``hit``; built stages are blue; failed checks are red.
- **Images:** per image, its compressed size by layer against its budget (a
  dashed line), its largest paths, and its findings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Final

from cargohold.image_facts import ImageFacts, format_size
from cargohold.report import SpanData, Trace, budget_verdict, checks, headline, images, passed

WIDTH: Final = 780  # the drawing area of each chart, in px
LABEL: Final = 240  # the lane labels left of it
ROW: Final = 22
MAX_TICKS: Final = 12
PALETTE: Final = (
    "#f28e2b",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#59a14f",
    "#bab0ac",
)  # not the bars' colours
_ORDER: Final = {"service": 0, "stage": 1, "check": 2}

CSS: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 15px; }
.meta { color: #57606a; margin: 0; }
.passed { color: #1a7f37; } .failed { color: #cf222e; } .skipped { color: #6e7781; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #d0d7de; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; } svg .axis { fill: #57606a; font-size: 11px; }
.grid { stroke: #eaeef2; } .lane-label { dominant-baseline: middle; }
.bar.service { fill: #eaeef2; stroke: #afb8c1; } .bar.stage.hit { fill: #4ac26b; } .bar.stage.built { fill: #4e79a7; }
.bar.check.passed { fill: #1a7f37; } .bar.check.failed { fill: #cf222e; } .bar.check.skipped { fill: #afb8c1; }
.bar.stage.reused, .bar.stage.skipped { fill: #afb8c1; } .concurrency { fill: #ddf4ff; stroke: #0969da; }
.budget { stroke: #cf222e; stroke-width: 2; stroke-dasharray: 6 4; } .path-bar { fill: #8c959f; }
.verdict.ok { color: #1a7f37; } .verdict.over { color: #cf222e; } .legend span { margin-right: 14px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
article.image { border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 16px 12px; margin: 12px 0; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def html(trace: Trace) -> str:
    """The whole page."""
    title = headline(trace)
    verdict = "passed" if passed(trace) else "failed"
    started = dt.datetime.fromtimestamp(trace.root.start, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = [
        f'<header><h1 class="{verdict}">{escape(title)}</h1>',
        f'<p class="meta">started {started} · {len(trace.spans)} spans · trace file: OTLP/JSON</p></header>',
        '<section id="timeline-section"><h2>Timeline</h2>', timeline_svg(trace), _legend(), "</section>",
        '<section id="tasks"><h2>Tasks</h2>', _task_table(trace), "</section>",
        '<section id="images"><h2>Images</h2>', *(image_article(label, f) for label, f in images(trace)),
        "</section>", *_failures(trace),
    ]  # fmt: skip
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# ---- the timeline ----------------------------------------------------------------------------------------


def lanes(trace: Trace) -> list[tuple[int, SpanData]]:
    """(depth, span) per lane: depth first from the root, services by name, then stages, then checks."""
    out: list[tuple[int, SpanData]] = []

    def visit(span: SpanData, depth: int) -> None:
        out.append((depth, span))
        kids = sorted(trace.children(span), key=lambda s: (_ORDER.get(s.name.split(" ")[0], 3), s.start, s.name))
        for kid in kids:
            visit(kid, depth + 1)

    for kid in sorted(trace.children(trace.root), key=lambda s: (_ORDER.get(s.name.split(" ")[0], 3), s.name)):
        visit(kid, 0)
    return out


def timeline_svg(trace: Trace) -> str:
    """Lanes of bars on one time axis, with the concurrency above them."""
    root, rows = trace.root, lanes(trace)
    total = max(root.seconds, 0.001)
    top = 70  # the axis and the concurrency strip
    height = top + ROW * len(rows) + 10

    def x(t: float) -> float:
        return LABEL + (t - root.start) / total * WIDTH

    parts = [_svg('id="timeline"', LABEL + WIDTH + 120, height)]
    parts += _axis(total, height)
    parts.append(_concurrency(trace, x))
    for i, (depth, span) in enumerate(rows):
        y = top + i * ROW
        parts.append(
            f'<text class="lane-label" x="{8 + 14 * depth}" y="{y + ROW / 2}">{escape(_lane_name(span))}</text>'
        )
        left, right = x(span.start), max(x(span.end), x(span.start) + 3)
        cls = _bar_class(span)
        parts.append(
            f'<rect class="{cls}" x="{left:.1f}" y="{y + 3}" width="{right - left:.1f}" height="{ROW - 6}" rx="2">'
            f"<title>{escape(_tooltip(span))}</title></rect>"
        )
        parts.append(f'<text x="{right + 4:.1f}" y="{y + ROW / 2 + 4}">{escape(_bar_text(span))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _axis(total: float, height: int) -> list[str]:
    step = next(
        s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 1e9) if total / s <= MAX_TICKS
    )
    ticks, t = [], 0.0
    while t <= total + 1e-9:
        px = LABEL + t / total * WIDTH
        ticks += [f'<line class="grid" x1="{px:.1f}" y1="18" x2="{px:.1f}" y2="{height}"/>',
                  f'<text class="axis" x="{px:.1f}" y="12" text-anchor="middle">{round(t, 1):g} s</text>']  # fmt: skip
        t += step
    return ticks


def concurrency(trace: Trace) -> list[tuple[float, int]]:
    """(time, how many stages and checks run from then on), at every start and end."""
    work = [s for s in trace.spans if s.name.startswith(("stage ", "check ")) and s.seconds > 0]
    edges = sorted([(s.start, 1) for s in work] + [(s.end, -1) for s in work])
    running, out = 0, []
    for t, change in edges:
        running += change
        out.append((t, running))
    return out


def _concurrency(trace: Trace, x: object) -> str:
    assert callable(x)  # noqa: S101 - the timeline's time → px
    steps = concurrency(trace)
    peak = max((n for _, n in steps), default=0) or 1
    base, scale = 60, 36 / peak
    points, level = [f"{x(trace.root.start):.1f},{base}"], 0
    for t, n in steps:
        points += [f"{x(t):.1f},{base - level * scale:.1f}", f"{x(t):.1f},{base - n * scale:.1f}"]
        level = n
    points.append(f"{x(trace.root.end):.1f},{base}")
    return (
        f'<text class="lane-label" x="8" y="{base - 12}">running at once (peak {peak})</text>'
        f'<polygon class="concurrency" points="{" ".join(points)}"/>'
    )


def _lane_name(span: SpanData) -> str:
    kind, _, rest = span.name.partition(" ")
    if kind == "stage":
        return f"{span.attr('stage', rest)}"
    if kind == "check":
        return f"{span.attr('task.kind', rest)}" if span.attr("task.kind") != "integration" else "integration"
    return rest or span.name


def _bar_class(span: SpanData) -> str:
    kind = span.name.split(" ")[0]
    if kind == "stage":
        return f"bar stage {span.attr('cache.result', 'built')}"
    if kind == "check":
        return f"bar check {span.attr('task.status', 'passed')}"
    return "bar service"


def _bar_text(span: SpanData) -> str:
    kind = span.name.split(" ")[0]
    if kind == "stage":
        return f"{span.attr('cache.result', '?')} · {span.seconds:.1f} s"
    if kind == "check" and span.attr("task.status") == "skipped":
        return "skipped: identical inputs" if "identical" in span.attr("task.detail", "") else "skipped"
    return f"{span.seconds:.1f} s"


def _tooltip(span: SpanData) -> str:
    facts = [f"{k.removeprefix('cargohold.')}={v}" for k, v in span.attributes.items() if not k.endswith("log_tail")]
    return f"{span.name} ({span.seconds:.2f} s)\n" + "\n".join(facts)


def _legend() -> str:
    items = [("#4ac26b", "stage from the cache (hit)"), ("#4e79a7", "stage built"), ("#1a7f37", "check passed"),
             ("#cf222e", "check failed"), ("#afb8c1", "skipped"), ("#eaeef2", "service")]  # fmt: skip
    spans = "".join(f'<span><i class="swatch" style="background:{c}"></i>{escape(t)}</span>' for c, t in items)
    return f'<p class="legend">{spans}</p>'


def _task_table(trace: Trace) -> str:
    rows = "".join(
        f'<tr><td>{escape(str(c.attr("task")))}</td><td class="{c.attr("task.status")}">{c.attr("task.status")}</td>'
        f'<td class="num">{c.seconds:.1f} s</td><td>{escape(str(c.attr("task.detail", "")))}</td></tr>'
        for c in checks(trace)
    )
    return f"<table><tr><th>task</th><th>status</th><th>time</th><th>detail</th></tr>{rows}</table>"


def _failures(trace: Trace) -> list[str]:
    failed = [c for c in checks(trace) if c.attr("task.status") == "failed" and c.attr("task.log_tail")]
    if not failed:
        return []
    blocks = [f"<h3>{escape(c.attr('task'))}</h3><pre>{escape(c.attr('task.log_tail'))}</pre>" for c in failed]
    return ['<section id="failures"><h2>Failures</h2>', *blocks, "</section>"]


# ---- images ------------------------------------------------------------------------------------------------


def image_article(label: str, facts: ImageFacts) -> str:
    """One image: verdict, size by layer against the budget, largest paths, findings."""
    verdict = budget_verdict(facts)
    cls = "over" if facts.over_budget else "ok"
    sizes = f"{format_size(facts.compressed_size)} compressed"
    if facts.layers:
        sizes += f" / {format_size(facts.uncompressed_size)} uncompressed"
    findings = "".join(
        f"<li><b>{escape(f.kind.value)}</b>: {escape(f.message)}"
        + (f"<br><code>{escape(', '.join(f.paths))}</code>" if f.paths else "")
        + "</li>"
        for f in facts.findings
    )
    slug = label.replace(":", "-")
    return "\n".join([
        f'<article class="image" id="image-{escape(slug)}">',
        f'<h3>{escape(label)} <span class="verdict {cls}">{escape(verdict)}</span></h3>',
        f'<p class="meta">{escape(facts.reference)} · {sizes}</p>',
        layers_svg(facts),
        *([paths_svg(facts.largest_paths)] if facts.largest_paths else []),
        f'<h4>Findings</h4><ul class="findings">{findings or "<li>none</li>"}</ul>' if facts.layers else
        '<p class="meta">Reused from an earlier run: its layers and findings were reported when it was built.</p>',
        "</article>",
    ])  # fmt: skip


def layers_svg(facts: ImageFacts) -> str:
    """A stacked bar of the compressed layers, largest first, with the budget as a dashed line; a legend below."""
    layers = sorted(facts.layers, key=lambda layer: -layer.compressed_size)
    scale = WIDTH / max(facts.compressed_size, facts.budget or 0, 1) / 1.08
    height = 70 + 18 * len(layers)
    parts = [_svg('class="size-chart layers"', LABEL + WIDTH, height)]
    left = 0.0
    segments = [(lf.compressed_size, lf.uncompressed_size, lf.created_by or lf.digest[:19]) for lf in layers]
    if not segments:
        segments = [(facts.compressed_size, 0, "the whole image (reused: no layer listing)")]
    for i, (size, raw, step) in enumerate(segments):
        width = max(size * scale, 1.0)
        color = PALETTE[i % len(PALETTE)]
        tip = f"{format_size(size)} compressed" + (f" / {format_size(raw)} uncompressed" if raw else "") + f" — {step}"
        parts.append(f'<rect class="layer" x="{left:.1f}" y="20" width="{width:.1f}" height="26" fill="{color}">'
                     f"<title>{escape(tip)}</title></rect>")  # fmt: skip
        if facts.layers:
            legend = f"{format_size(size)} · {escape(_short(step, 100))}"
            parts.append(f'<rect x="0" y="{60 + 18 * i}" width="10" height="10" fill="{color}"/>'
                         f'<text x="16" y="{69 + 18 * i}">{legend}</text>')  # fmt: skip
        left += width
    parts.append(f'<text x="0" y="13">{format_size(facts.compressed_size)} compressed</text>')
    if facts.budget is not None:
        bx = facts.budget * scale
        left_of_line = bx > LABEL  # room for the label before the line; else after it
        anchor, tx = ("end", bx - 4) if left_of_line else ("start", bx + 4)
        label = f"budget {format_size(facts.budget)}"
        parts.append(f'<line class="budget" x1="{bx:.1f}" y1="14" x2="{bx:.1f}" y2="52"/>'
                     f'<text x="{tx:.1f}" y="13" text-anchor="{anchor}">{label}</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def paths_svg(paths: Sequence[tuple[str, int]]) -> str:
    """The largest paths of the final filesystem as bars (uncompressed)."""
    biggest = max((size for _, size in paths), default=1) or 1
    height = 24 + 18 * len(paths)
    parts = [_svg('class="size-chart paths"', LABEL + WIDTH, height),
             '<text x="0" y="13">largest paths (uncompressed)</text>']  # fmt: skip
    for i, (path, size) in enumerate(paths):
        y = 20 + 18 * i
        width = max(size / biggest * 300, 1.0)
        parts.append(f'<rect class="path-bar" x="0" y="{y}" width="{width:.1f}" height="13">'
                     f"<title>{escape(path)}</title></rect>"
                     f'<text x="310" y="{y + 11}">{format_size(size)}  {escape(_short(path, 90))}</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def _svg(what: str, width: int, height: int) -> str:
    return f'<svg {what} xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
