"""Issue 8, the pure parts: a traced run's span tree, its trace file, and the Markdown and HTML made from it.

The spans are made by the real OpenTelemetry SDK through the same hooks the
pipeline calls; only the work inside them is a sleep instead of the engine.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import anyio
import pytest

from cargohold import telemetry
from cargohold.image_facts import Finding, FindingKind, ImageFacts, LayerFacts
from cargohold.progress import ProgressView
from cargohold.report import checks, counts, images, load_trace, markdown, stages, tree_problems
from cargohold.report_html import concurrency, html, lanes
from cargohold.results import TaskKind, TaskResult, TaskStatus
from cargohold.stage_cache import Outcome, StageRecord

MB = 1_000_000


def _facts(budget: int) -> ImageFacts:
    layers = (
        LayerFacts("sha256:" + "a" * 64, 48 * MB, 170 * MB, "the base (python 3.11)", ()),
        LayerFacts("sha256:" + "b" * 64, 160 * MB, 580 * MB, "Directory.withDirectory /opt/heavy", ()),
    )
    paths = (("/opt/heavy/torch/lib/libtorch_cpu.so", 400 * MB), ("/usr/lib/libpython3.11.so", 8 * MB))
    over = Finding(
        FindingKind.OVER_BUDGET, "8.0 MB over the budget of 200.0 MB; largest layers: …", ("/opt/x",), 8 * MB
    )
    findings = (over,) if budget < 208 * MB else ()
    ref, digest = "reg/backend@sha256:" + "c" * 64, "sha256:" + "c" * 64
    return ImageFacts(ref, digest, 208 * MB, 750 * MB, layers, paths, "10001", budget, findings)


async def _stage(name: str, outcome: Outcome, seconds: float) -> None:
    await anyio.sleep(seconds)
    telemetry.annotate_stage(StageRecord("backend", "cpu", name, f"{name}-key-0123456789abcdef", outcome, seconds))


async def _check(name: str, kind: TaskKind, status: TaskStatus, seconds: float, results: list[TaskResult]) -> None:
    with telemetry.span(f"check {name}", telemetry.check_attributes(name, kind)):
        await anyio.sleep(seconds)
        result = TaskResult(name, kind, status, seconds, "ruff check . exited with 1" if status == "failed" else "ok",
                            "app/x.py:1:1: F401 `os` imported but unused" if status == "failed" else "")  # fmt: skip
        results.append(result)
        telemetry.annotate_result(result)
        if kind is TaskKind.BUILD:
            telemetry.annotate_facts(_facts(200 * MB), "reg/backend@sha256:" + "c" * 64)


async def _service(results: list[TaskResult]) -> None:
    async with anyio.create_task_group() as tg:
        for stage, outcome in (("heavy", Outcome.HIT), ("dependencies", Outcome.BUILT)):
            attributes = telemetry.stage_attributes("backend", "cpu", stage)
            tg.start_soon(telemetry.traced, f"stage backend:cpu {stage}", attributes, _stage, stage, outcome, 0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_check, "backend:lint", TaskKind.LINT, TaskStatus.FAILED, 0.05, results)
        tg.start_soon(_check, "backend:build", TaskKind.BUILD, TaskStatus.PASSED, 0.08, results)


async def _run(results: list[TaskResult]) -> None:
    attributes = telemetry.target_attributes("backend", "cpu", "image-key")
    await telemetry.traced("service backend:cpu", attributes, _service, results)
    results.append(TaskResult("backend:test", TaskKind.TEST, TaskStatus.SKIPPED, detail="skipped: identical inputs"))


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ProgressView, str]:
    path = tmp_path_factory.mktemp("trace") / "reports" / "trace.json"
    results: list[TaskResult] = []
    plain = io.StringIO()
    view = ProgressView(["check backend:lint", "check backend:test", "check backend:build"], plain=plain)
    with telemetry.traced_run("ci", path, {}, [view]) as tracing:
        parent = telemetry.traceparent(tracing.root)
        import os  # noqa: PLC0415

        assert os.environ["TRACEPARENT"] == parent  # what the Dagger session inherits
        anyio.run(_run, results)
        telemetry.finish_run(results)
    return path, view, plain.getvalue()


def test_the_spans_form_one_tree_with_every_child_inside_its_parent(traced: tuple[Path, ProgressView, str]) -> None:
    trace = load_trace(traced[0])
    assert tree_problems(trace) == []
    assert trace.root.name == "ci"
    assert trace.root.status == "error"  # one check failed
    by_name = {s.name: s for s in trace.spans}
    service = by_name["service backend:cpu"]
    assert {s.name for s in trace.children(service)} == {
        "stage backend:cpu heavy", "stage backend:cpu dependencies", "check backend:lint", "check backend:build",
        "check backend:test",
    }  # fmt: skip
    assert by_name["stage backend:cpu heavy"].attr("cache.result") == "hit"
    assert by_name["stage backend:cpu dependencies"].attr("cache.result") == "built"
    assert by_name["stage backend:cpu heavy"].attr("cache.key") == "heavy-key-0123456789abcdef"
    assert by_name["check backend:lint"].status == "error"
    assert by_name["check backend:test"].seconds == 0.0  # skipped: a zero-length span at its service's end
    assert by_name["check backend:build"].seconds >= 0.08  # the real time, not a recorded number
    assert counts(trace) == {"passed": 1, "failed": 1, "skipped": 1}


def test_the_trace_file_is_otlp_json_with_hex_ids(traced: tuple[Path, ProgressView, str]) -> None:
    body = json.loads(traced[0].read_text())
    spans = [s for r in body["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) for s in spans)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s["spanId"]) for s in spans)
    assert len({s["traceId"] for s in spans}) == 1


def test_image_facts_come_back_from_the_span_events(traced: tuple[Path, ProgressView, str]) -> None:
    ((label, facts),) = images(load_trace(traced[0]))
    assert label == "backend:cpu"
    assert facts == _facts(200 * MB)


def test_the_markdown_summary_lists_tasks_cache_images_and_failure_output(
    traced: tuple[Path, ProgressView, str],
) -> None:
    text = markdown(load_trace(traced[0]))
    assert text.startswith("## ❌ ci failed: 1 passed, 1 failed, 1 skipped")
    assert "| backend:lint | ❌ failed |" in text
    assert "| backend:cpu | heavy | hit |" in text
    assert "| backend:cpu | 208.0 MB | 750.0 MB | 200.0 MB | OVER by 8.0 MB | over-budget |" in text
    assert "F401" in text


def test_the_html_page_is_self_contained_with_a_timeline_and_size_charts(
    traced: tuple[Path, ProgressView, str],
) -> None:
    trace = load_trace(traced[0])
    page = html(trace)
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "no external asset"
    assert "<script" not in page
    timeline = page[page.index('<svg id="timeline"') : page.index("</svg>", page.index('<svg id="timeline"'))]
    assert timeline.count('class="bar stage hit"') == 1
    assert timeline.count('class="bar check failed"') == 1
    assert "hit · " in timeline
    assert page.count('class="layer"') == 2
    assert 'class="budget"' in page
    assert "libtorch_cpu.so" in page
    assert "over-budget" in page
    order = [s.name for _, s in lanes(trace)]
    assert order[0] == "service backend:cpu"
    assert set(order[1:3]) == {"stage backend:cpu dependencies", "stage backend:cpu heavy"}  # stages, then checks
    assert max(n for _, n in concurrency(trace)) == 2  # two stages, then two checks, side by side


def test_the_progress_view_saw_every_task_start_and_end(traced: tuple[Path, ProgressView, str]) -> None:
    _, view, plain = traced
    states = {name: row.state for name, row in view.rows.items()}
    assert states["check backend:lint"] == "failed"
    assert states["check backend:build"] == "passed"
    assert states["stage backend:cpu heavy"] == "hit"
    assert states["check backend:test"] == "skipped"
    assert plain.splitlines()[0] == "progress: waiting: backend:lint, backend:test, backend:build"
    assert "progress: started  stage backend:cpu heavy" in plain
    assert re.search(r"progress: hit +stage backend:cpu heavy \(0\.\d s\)  key heavy-key-01", plain), plain
    assert "backend:cpu" in str(view.table().columns[0]._cells)  # noqa: SLF001 - the rendered rows


def test_a_missing_trace_is_one_line_with_the_fix(tmp_path: Path) -> None:
    from cargohold.errors import CargoholdError  # noqa: PLC0415

    with pytest.raises(CargoholdError, match="no readable trace") as e:
        load_trace(tmp_path / "nope.json")
    assert "./dev ci" in e.value.one_line()


def test_stages_and_checks_come_in_reading_order(traced: tuple[Path, ProgressView, str]) -> None:
    trace = load_trace(traced[0])
    assert [s.attr("task") for s in checks(trace)] == ["backend:lint", "backend:test", "backend:build"]
    assert {s.attr("stage") for s in stages(trace)} == {"heavy", "dependencies"}


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []  # noqa: RUF012 - one test's capture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_spans_go_to_an_otlp_collector_when_the_standard_variables_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.delenv("TRACEPARENT", raising=False)
        with telemetry.traced_run("ci", tmp_path / "trace.json", {}), telemetry.span("check backend:lint"):
            pass
    finally:
        server.shutdown()
        server.server_close()
    paths = [p for p, _ in _Collector.received]
    assert paths == ["/v1/traces"]
    assert b"check backend:lint" in _Collector.received[0][1]  # the protobuf body names the span
    assert load_trace(tmp_path / "trace.json").root.name == "ci"  # and the file is written all the same


def test_a_callers_traceparent_becomes_the_parent_of_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    monkeypatch.setenv("TRACEPARENT", outer)
    with telemetry.traced_run("ci", tmp_path / "trace.json", {}):
        pass
    body = json.loads((tmp_path / "trace.json").read_text())
    (root,) = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert root["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert root["parentSpanId"] == "b7ad6b7169203331"
    import os  # noqa: PLC0415

    assert os.environ["TRACEPARENT"] == outer  # restored after the run


def test_no_span_is_recorded_outside_a_traced_run() -> None:
    with telemetry.span("check x") as current:
        assert not current.get_span_context().is_valid
    assert asyncio.iscoroutinefunction(telemetry.traced)


def test_the_report_command_writes_the_page_and_the_markdown(
    traced: tuple[Path, ProgressView, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cargohold.cli import main  # noqa: PLC0415

    page, md = tmp_path / "out" / "report.html", tmp_path / "out" / "report.md"
    code = main(["report", "--trace", str(traced[0]), "--html", str(page), "--markdown", str(md)])
    assert code == 0
    assert page.read_text().startswith("<!doctype html>")
    assert md.read_text() == markdown(load_trace(traced[0]))
    assert main(["report", "--trace", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: "), err
    assert "run './dev ci' first" in err[-1], err
    assert "Traceback" not in "".join(err)


def test_ci_appends_its_markdown_to_the_github_step_summary(
    traced: tuple[Path, ProgressView, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cargohold import cli  # noqa: PLC0415

    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    cli._step_summary(traced[0])  # noqa: SLF001 - what ci calls after the run
    written = summary.read_text()
    assert written == "earlier step\n" + markdown(load_trace(traced[0]))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    cli._step_summary(traced[0])  # noqa: SLF001 - without the variable: nothing written anywhere
    assert summary.read_text() == written


def test_outside_a_traced_run_the_hooks_touch_no_span_of_anyone_else() -> None:
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    other = TracerProvider().get_tracer("someone-else")  # e.g. the Dagger SDK's own, under `dagger call`
    with other.start_as_current_span("their span") as theirs:
        telemetry.annotate({"cargohold.x": 1})
        telemetry.annotate_result(TaskResult("a:lint", TaskKind.LINT, TaskStatus.FAILED, 1.0, "boom"))
        telemetry.annotate_facts(_facts(300 * MB), "ref")
    assert not theirs.attributes
    assert not theirs.events
