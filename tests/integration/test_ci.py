"""Issue 6 on the real engine: `ci` on a clean tree, and with two planted failures in one run.

The real command line runs against a copy of the repository, in a registry
namespace of its own, so nothing here is reused from other tests' runs.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
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
    clean: tuple[Path, subprocess.CompletedProcess[str]], namespace: str
) -> None:
    repo, _ = clean
    config = repo / "cargohold.toml"
    original = config.read_text()
    config.write_text(original.replace('budget = "100MB"   # the node-only base is most of it', 'budget = "10MB"'))
    try:
        done = _ci(repo, namespace, "--only", "build", "--service", "frontend")
    finally:
        config.write_text(original)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED  frontend:build" in done.stdout
    assert "over its budget" in done.stdout
    assert "budget 10.0 MB" in done.stdout
