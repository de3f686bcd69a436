"""The CI results model: summary lines, JUnit XML, --only, start order (pure)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from cargohold.config import load_config
from cargohold.errors import ConfigError
from cargohold.integration import start_order
from cargohold.results import TaskKind, TaskResult, TaskStatus, counts_line, junit_xml, parse_only, summary_lines, tail

ROOT = Path(__file__).parents[2]
RESULTS = [
    TaskResult("backend:lint", TaskKind.LINT, TaskStatus.FAILED, 1.5, "ruff check . exited with 1", "F401 unused"),
    TaskResult("backend:build", TaskKind.BUILD, TaskStatus.PASSED, 20.0, "ref"),
    TaskResult("frontend:test", TaskKind.TEST, TaskStatus.SKIPPED, 0.0, "skipped: identical inputs"),
]


def test_summary_shows_each_task_and_the_failures_output() -> None:
    lines = summary_lines(RESULTS)
    assert any(line.startswith("  FAILED  backend:lint") for line in lines)
    assert "      | F401 unused" in lines
    assert lines[-1] == "ci: 1 passed, 1 failed, 1 skipped"
    assert counts_line(RESULTS) == lines[-1]


def test_junit_has_one_case_per_task() -> None:
    suite = ET.fromstring(junit_xml(RESULTS))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = suite.find("testcase[@name='backend:lint']/failure")
    assert failure is not None
    assert failure.text == "F401 unused"


def test_only_accepts_lists_and_repeats_and_rejects_unknown_tasks() -> None:
    assert parse_only(None) == frozenset(TaskKind)
    assert parse_only(["lint,test", "build"]) == {TaskKind.LINT, TaskKind.TEST, TaskKind.BUILD}
    with pytest.raises(ConfigError, match="--only deploy: use lint, test, build or integration"):
        parse_only(["deploy"])


def test_services_start_after_what_they_depend_on() -> None:
    config = load_config(ROOT / "cargohold.toml", environ={})
    assert start_order(config) == ["backend", "frontend"]


def test_tool_output_loses_colour_codes_and_stays_valid_xml() -> None:
    coloured = "\x1b[31mFAIL\x1b[39m src/planted.test.ts \x1b[2m>\x1b[22m planted failure\x08"
    result = TaskResult("frontend:test", TaskKind.TEST, TaskStatus.FAILED, 1.0, "npm test", tail(coloured))
    assert result.log_tail == "FAIL src/planted.test.ts > planted failure"
    assert ET.fromstring(junit_xml([result])).find("testcase/failure") is not None
