"""The Dagger SDK costs seconds to import: what needs no engine must not import it.

Each check runs in a fresh interpreter, since this test process has imported the
SDK already (other tests load the engine-side modules).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "cargohold.toml")


def sdk_loaded_after(code: str) -> bool:
    """Whether ``dagger`` is in ``sys.modules`` once ``code`` has run in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('dagger' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, f"wanted the probe to run, got exit {done.returncode}:\n{done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "module",
    [
        "cargohold",
        "cargohold.cli",
        "cargohold.ci_run",
        "cargohold.reuse",
        "cargohold.plan",
        "cargohold.image_checks",
        "cargohold.targets",
    ],
)
def test_importing_the_engine_free_modules_leaves_the_sdk_alone(module: str) -> None:
    assert not sdk_loaded_after(f"import {module}"), f"wanted {module} without the Dagger SDK, got it imported"


@pytest.mark.parametrize("argv", [["validate"], ["--help"], ["engine", "--help"], ["plan", "--help"]])
def test_commands_that_need_no_engine_leave_the_sdk_alone(argv: list[str]) -> None:
    code = f"from cargohold.cli import main\nmain(['--config', {CONFIG!r}, *{argv!r}])"
    assert not sdk_loaded_after(code), f"wanted {argv} without the Dagger SDK, got it imported"


def test_a_ci_with_everything_verified_leaves_the_sdk_alone(tmp_path: Path) -> None:
    """The no-change ``ci``'s own work: green skips for reused images, then the JUnit file.

    Without the build task no budget is read, so no registry is needed; the rest of that path
    (plan, marker lookups, reuse) is registry calls in modules the import check above covers.
    """
    junit = tmp_path / "junit.xml"
    code = f"""
from pathlib import Path

import anyio
from cargohold.ci_run import CiOptions, verified_run, write_junit
from cargohold.config import load_config
from cargohold.results import TaskKind, junit_xml
from cargohold.reuse import BuildRun, PushedImage

image = PushedImage("backend", "cpu", "127.0.0.1:5000/demo/backend@sha256:{"0" * 64}", "reused", "k")
options = CiOptions(frozenset({{TaskKind.LINT, TaskKind.TEST, TaskKind.INTEGRATION}}))
run = anyio.run(verified_run, load_config(Path({CONFIG!r})), BuildRun([image], []), options)
write_junit(Path({str(junit)!r}), junit_xml(run.results))
"""
    assert not sdk_loaded_after(code), "wanted a verified ci run without the Dagger SDK, got it imported"
    text = junit.read_text()
    for name in ("backend:lint", "backend:test", "integration"):
        assert f'name="{name}"' in text, f"wanted a skipped {name} in the JUnit XML, got:\n{text}"


def test_the_probe_sees_the_sdk_where_it_is_imported() -> None:
    assert sdk_loaded_after("import cargohold.main"), "the probe must be able to fail"
