"""Shared test set-up: the integration marker, and the one-line integration summary.

Every test under tests/integration is marked ``integration`` here, so a
file cannot forget it. The run ends with exactly one line that says whether
the integration part ran, and on which engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"
ENGINE_KEY = pytest.StashKey[str]()  # "v0.21.8 (native)", set by the integration engine fixture
NO_ENGINE_KEY = pytest.StashKey[str]()  # the reason integration tests were skipped


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    counts = dict.fromkeys(("passed", "failed", "skipped", "error"), 0)
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if "integration" in getattr(report, "keywords", {}):
                counts[outcome] += 1
    ran = counts["passed"] + counts["failed"] + counts["error"]
    if engine := config.stash.get(ENGINE_KEY, None):
        line = f"integration: {counts['passed']} passed on engine {engine}"
        if counts["failed"] or counts["error"]:
            line += f", {counts['failed'] + counts['error']} failed"
    elif ran == 0 and counts["skipped"]:
        reason = config.stash.get(NO_ENGINE_KEY, "no Dagger engine")
        line = f"integration: SKIPPED ({reason}, see README)"
    else:
        line = "integration: not selected"
    terminalreporter.write_line(line)
