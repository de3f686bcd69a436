"""How the Python stages run their steps (pure: the argv they hand the engine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cargohold.base_images import BUILDER_TOOLS_SCRIPT
from cargohold.stages_python import _one_exec


def test_the_steps_of_a_stage_run_in_one_exec_and_stop_at_the_first_failure() -> None:
    argv = _one_exec(["pip", "install", "-r", "my lock.txt"], [], ["python", "-c", "print(1)"])
    assert argv == ["sh", "-c", "pip install -r 'my lock.txt' && python -c 'print(1)'"]
    assert _one_exec(["true"], []) == ["true"]


def test_the_builder_makes_only_the_tools_its_base_lacks(tmp_path: Path) -> None:
    script = BUILDER_TOOLS_SCRIPT.replace("/opt/", f"{tmp_path}/")  # the same shell, on this host
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)  # a base that has the venv only
    subprocess.run(["sh", "-c", script], check=True, capture_output=True)
    assert (tmp_path / "pip-tool" / "pip" / "__pip-runner__.py").is_file()
    assert sorted(p.name for p in (tmp_path / "venv").iterdir()) == ["bin"], "an existing venv is left alone"
