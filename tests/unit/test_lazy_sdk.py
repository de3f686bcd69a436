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
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "module",
    ["cargohold", "cargohold.cli", "cargohold.reuse", "cargohold.plan", "cargohold.image_checks", "cargohold.targets"],
)
def test_importing_the_engine_free_modules_leaves_the_sdk_alone(module: str) -> None:
    assert not sdk_loaded_after(f"import {module}"), f"wanted {module} without the Dagger SDK, got it imported"


@pytest.mark.parametrize("argv", [["validate"], ["--help"], ["engine", "--help"], ["plan", "--help"]])
def test_commands_that_need_no_engine_leave_the_sdk_alone(argv: list[str]) -> None:
    code = f"from cargohold.cli import main\nmain(['--config', {CONFIG!r}, *{argv!r}])"
    assert not sdk_loaded_after(code), f"wanted {argv} without the Dagger SDK, got it imported"


def test_the_probe_sees_the_sdk_where_it_is_imported() -> None:
    assert sdk_loaded_after("import cargohold.main"), "the probe must be able to fail"
