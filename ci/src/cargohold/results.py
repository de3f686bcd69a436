"""What `ci` reports: one result per task, a summary a person reads, and JUnit XML (pure).

A task is one check of one service (lint, unit tests, build) or the
integration suite. Every task ends with a result, a failure does not hide the
others, and a service reused for identical inputs is a green "skipped".
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

from cargohold.errors import ConfigError

TAIL_LINES: Final = 40


class TaskKind(enum.StrEnum):
    """The checks `ci` runs (and `--only` selects)."""

    LINT = "lint"
    TEST = "test"
    BUILD = "build"
    INTEGRATION = "integration"


class TaskStatus(enum.StrEnum):
    """How a task ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # identical inputs already verified, or not selected, or cancelled by --fail-fast


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome."""

    name: str  # "backend:lint", "integration"
    kind: TaskKind
    status: TaskStatus
    seconds: float = 0.0
    detail: str = ""  # one line: what ran, or why it was skipped
    log_tail: str = ""  # the tool's own output (the end of it) when it failed


_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML 1.0


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last lines of a tool's output, without colour codes or control characters."""
    clean = _CONTROL.sub("", _ANSI.sub("", text))
    return "\n".join(clean.strip().splitlines()[-lines:])


def failed(results: Sequence[TaskResult]) -> list[TaskResult]:
    """The failed tasks."""
    return [r for r in results if r.status is TaskStatus.FAILED]


def summary_lines(results: Sequence[TaskResult]) -> list[str]:
    """A table of every task, each failure's output under it, and a last line with the counts."""
    lines = ["ci results:"]
    for r in results:
        lines.append(f"  {r.status.value.upper():<7} {r.name:<24} {r.seconds:>6.1f}s  {r.detail}")
        if r.status is TaskStatus.FAILED and r.log_tail:
            lines += [f"      | {line}" for line in r.log_tail.splitlines()]
    lines.append(counts_line(results))
    return lines


def counts_line(results: Sequence[TaskResult]) -> str:
    """``ci: N passed, N failed, N skipped`` — the plain closing line CI systems read."""
    n = {s: sum(1 for r in results if r.status is s) for s in TaskStatus}
    return f"ci: {n[TaskStatus.PASSED]} passed, {n[TaskStatus.FAILED]} failed, {n[TaskStatus.SKIPPED]} skipped"


def junit_xml(results: Sequence[TaskResult], suite: str = "cargohold-ci") -> str:
    """JUnit XML with one test case per task (CI systems render it as test results)."""
    n = {s: sum(1 for r in results if r.status is s) for s in TaskStatus}
    total = f"{sum(r.seconds for r in results):.2f}"
    root = ET.Element(
        "testsuite", name=suite, tests=str(len(results)), failures=str(n[TaskStatus.FAILED]),
        skipped=str(n[TaskStatus.SKIPPED]), time=total,
    )  # fmt: skip
    for r in results:
        case = ET.SubElement(root, "testcase", classname=r.kind.value, name=r.name, time=f"{r.seconds:.2f}")
        if r.status is TaskStatus.FAILED:
            ET.SubElement(case, "failure", message=r.detail).text = r.log_tail
        elif r.status is TaskStatus.SKIPPED:
            ET.SubElement(case, "skipped", message=r.detail)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def parse_only(values: Sequence[str] | None) -> frozenset[TaskKind]:
    """``--only lint,test --only build`` → the task kinds; all of them when none are given."""
    if not values:
        return frozenset(TaskKind)
    kinds = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if unknown := [k for k in kinds if k not in {t.value for t in TaskKind}]:
        raise ConfigError([f"--only {', '.join(unknown)}: use lint, test, build or integration"], "command line")
    return frozenset(TaskKind(k) for k in kinds)
