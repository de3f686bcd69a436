"""Issue 6 on the real engine: `ci` on a clean tree, and with two planted failures in one run.

The real command line runs against a copy of the repository, in a registry
namespace of its own, so nothing here is reused from other tests' runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from cargohold.report import checks, images, load_trace, stages, tree_problems
from tests.integration import chromium
from tests.integration.workspace import ROOT, copy_repo, runner_env


def _ci(repo: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(ROOT / "pipelines.py"), "--config", str(repo / "cargohold.toml"), "ci", *args]
    env = runner_env(namespace)
    return subprocess.run(argv, env=env, cwd=repo, capture_output=True, text=True, timeout=1500, check=False)


@pytest.fixture(scope="module")
def namespace(bootstrapped: BootstrapReport) -> str:
    return f"{local_registry_address()}/ci-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def clean(namespace: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    repo = copy_repo(tmp_path_factory.mktemp("clean") / "repo")
    return repo, _ci(repo, namespace)


def test_a_clean_tree_passes_and_reports_every_task(clean: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    repo, done = clean
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for task in ("backend:lint", "backend:test", "backend:build", "frontend:lint", "frontend:test", "frontend:build"):
        assert f"PASSED  {task}" in done.stdout, done.stdout
    assert "PASSED  integration" in done.stdout, done.stdout
    suite = ET.parse(repo / "reports" / "junit.xml").getroot()
    assert suite.get("tests") == "7"
    assert suite.get("failures") == "0"
    integration = ET.parse(repo / "reports" / "integration.xml").getroot()
    cases = {c.get("name") for c in integration.iter("testcase")}
    assert "test_the_database_files_live_on_tmpfs" in cases
    assert "test_a_prediction_is_written_through_the_api_and_read_back" in cases


def test_a_lint_error_and_a_failing_unit_test_are_both_reported_and_builds_complete(
    clean: tuple[Path, subprocess.CompletedProcess[str]], namespace: str, tmp_path: Path
) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "services/backend/app/planted.py").write_text('"""Planted."""\n\nimport os\n')  # F401
    (repo / "services/frontend/src/planted.test.ts").write_text(
        "import { expect, test } from 'vitest'\n\ntest('planted failure', () => {\n  expect(1 + 1).toBe(3)\n})\n"
    )
    done = _ci(repo, namespace, "--only", "lint,test,build")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "FAILED  backend:lint" in out, out
    assert "F401" in out, "wanted ruff's own output for the planted import"
    assert "FAILED  frontend:test" in out, out
    assert "planted failure" in out, "wanted vitest's own output for the planted test"
    assert "PASSED  backend:build" in out, out
    assert "PASSED  frontend:build" in out, out
    assert "PASSED  backend:test" in out, out
    assert "Traceback" not in done.stderr
    suite = ET.parse(repo / "reports" / "junit.xml").getroot()
    assert suite.get("failures") == "2"


def test_an_image_over_its_budget_fails_ci_with_its_size(
    clean: tuple[Path, subprocess.CompletedProcess[str]], namespace: str, tmp_path: Path
) -> None:
    repo, _ = clean
    config = repo / "cargohold.toml"
    original = config.read_text()
    config.write_text(original.replace('budget = "100MB"   # the node-only base is most of it', 'budget = "10MB"'))
    try:
        done = _ci(repo, namespace, "--only", "build", "--service", "frontend", "--trace", str(tmp_path / "trace.json"))
    finally:
        config.write_text(original)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED  frontend:build" in done.stdout
    assert "over its budget" in done.stdout
    assert "budget 10.0 MB" in done.stdout
    assert "largest layers:" in done.stdout, "wanted the top contributors: the largest layers"
    assert "largest paths: /" in done.stdout, "wanted the top contributors: the largest paths"
    trace = load_trace(tmp_path / "trace.json")
    (build,) = checks(trace)
    assert (build.attr("task"), build.status) == ("frontend:build", "error")
    ((label, facts),) = images(trace)
    assert (label, facts.budget, facts.over_budget) == ("frontend:default", 10**7, True)
    assert facts.layers, "wanted the layers in the trace, for the report's size chart"


# ---- issue 8: the clean run's trace, and its HTML report in a real browser ----------------------------------


def _printed_seconds(stdout: str) -> dict[str, float]:
    """``PASSED  backend:lint   13.9s  …`` → {"backend:lint": 13.9}."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^  [A-Z]+ +(\S+) +([\d.]+)s", stdout, re.MULTILINE)}


def _printed_cache(stderr: str) -> dict[tuple[str, str], str]:
    """The cache report's rows → {(image, stage): result}."""
    rows = re.finditer(r"^(\S+:\S+) +([\w-]+) +(hit|built|reused|skipped) ", stderr, re.MULTILINE)
    return {(m[1], m[2]): m[3] for m in rows}


def test_the_run_leaves_a_trace_whose_spans_form_one_tree_that_matches_the_run(
    clean: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    repo, done = clean
    trace = load_trace(repo / "reports" / "trace.json")
    assert tree_problems(trace) == []
    assert trace.root.name == "ci"
    assert trace.root.status == "ok"
    assert trace.root.attr("passed") == 7
    printed = _printed_seconds(done.stdout)
    by_task = {c.attr("task"): c for c in checks(trace)}
    assert set(by_task) == set(printed) == {
        "backend:lint", "backend:test", "backend:build", "frontend:lint", "frontend:test", "frontend:build",
        "integration",
    }  # fmt: skip
    for name, span in by_task.items():
        assert span.attr("task.status") == "passed", (name, span.attributes)
        assert abs(span.seconds - printed[name]) < 0.1, f"{name}: span {span.seconds:.2f} s, printed {printed[name]} s"
    ids = {s.span_id: s for s in trace.spans}
    for name in ("backend:lint", "frontend:build"):  # a service's checks hang under its service span
        assert (
            ids[by_task[name].parent_id].name
            == f"service {name.split(':')[0]}:{'cpu' if 'backend' in name else 'default'}"
        )
    assert ids[by_task["integration"].parent_id] == trace.root
    cache = {
        (f"{s.attr('service')}:{s.attr('variant')}", s.attr("stage")): s.attr("cache.result") for s in stages(trace)
    }
    assert cache == _printed_cache(done.stderr), "wanted the same cache result per stage as the cache report"
    assert all(s.attr("cache.key") for s in stages(trace))
    for service in ("backend", "frontend"):
        build = by_task[f"{service}:build"]
        assert build.attr("image.digest", "").startswith("sha256:")
        assert build.attr("image.digest") in done.stdout  # the digest the summary printed
        assert build.attr("image.compressed_bytes") > 0
        assert [e for e in build.events if e.name == "image.layer"], "wanted the layers as span events"


def test_the_html_report_renders_its_timeline_and_size_charts_in_headless_chromium(
    clean: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    repo, _ = clean
    page, md = tmp_path / "report.html", tmp_path / "report.md"
    argv = [sys.executable, str(ROOT / "pipelines.py"), "report", "--trace", str(repo / "reports" / "trace.json"),
            "--html", str(page), "--markdown", str(md)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| backend:cpu |" in md.read_text()
    seen = chromium.measured(page, tmp_path)
    timeline = seen["timeline"]
    assert timeline["width"] > 800, timeline
    assert timeline["height"] > 200, timeline
    assert timeline["bars"] >= 10, timeline
    assert timeline["drawn"] == timeline["bars"], timeline  # every lane has its bar, laid out with a size
    assert timeline["built"] >= 4, timeline  # a clean namespace: every stage built
    charts = {c["image"]: c for c in seen["charts"]}
    assert set(charts) == {"image-backend-cpu", "image-frontend-default"}, charts
    for chart in charts.values():
        assert chart["layers"] >= 2, chart
        assert chart["drawn"] == chart["layers"], chart
        assert chart["budget"] == 1, chart
    png = chromium.screenshot(page, tmp_path / "report.png", tmp_path, size="1280,1400")
    built, passed = chromium.colour_count(png, (0x4E, 0x79, 0xA7)), chromium.colour_count(png, (0x1A, 0x7F, 0x37))
    assert built > 500, f"wanted the built stages' bars painted, got {built} px of their blue"
    assert passed > 500, f"wanted the passed checks' bars painted, got {passed} px of their green"
