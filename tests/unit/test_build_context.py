"""The build-context check on real folders: planted junk is caught and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.build_context import scan
from cargohold.cli import main
from cargohold.config import ContextConfig

ROOT = Path(__file__).parents[2]


def _plant(folder: Path) -> None:
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "main.py").write_text("print('hi')\n")
    (folder / ".venv" / "lib").mkdir(parents=True)
    (folder / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (folder / ".venv" / "lib" / "big.so").write_bytes(b"\0" * 3_000_000)
    (folder / "data.csv").write_bytes(b"x" * 6_000_000)


def test_a_planted_venv_and_a_large_file_are_named(tmp_path: Path) -> None:
    _plant(tmp_path)
    report = scan(tmp_path, ContextConfig())
    named = {p.path: p.reason for p in report.problems}
    assert set(named) == {".venv", "data.csv"}, named
    assert "virtualenv" in named[".venv"]
    assert "max-file-size" in named["data.csv"]
    assert report.total_bytes > 9_000_000


def test_weights_git_and_node_modules_are_caught(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "index.js").write_text("1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / "paths.pth").write_text("/opt/x\n")  # a small .pth is a path file, not weights
    assert {p.path for p in scan(tmp_path, ContextConfig()).problems} == {"node_modules", ".git", "model.safetensors"}


def test_excluded_paths_and_tool_caches_are_not_scanned(tmp_path: Path) -> None:
    _plant(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0" * 9_000_000)
    rules = ContextConfig.model_validate({"exclude": [".venv", "data.csv"]})
    report = scan(tmp_path, rules)
    assert report.ok, report.lines()
    assert report.files == 1


def test_the_repository_services_have_clean_contexts() -> None:
    for folder in ("services/backend", "services/frontend"):
        rules = ContextConfig.model_validate({"exclude": ["node_modules", "dist"]})
        assert scan(ROOT / folder, rules).ok


def test_the_build_command_refuses_a_dirty_context_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plant(tmp_path / "svc")
    pin = "python:3.11-slim@sha256:" + "a" * 64
    images = "".join(f'{role} = "{pin}"\n' for role in ("python", "python-build", "node", "node-runtime", "postgres"))
    (tmp_path / "cargohold.toml").write_text(
        f'[project]\nname = "acme"\n[images]\n{images}'
        '[services.api]\npath = "svc"\nkind = "python"\nport = 8000\ncommand = ["python", "-m", "app"]\n'
    )
    assert main(["--config", str(tmp_path / "cargohold.toml"), "build"]) == 2
    err = capsys.readouterr().err
    assert "the build context of api (svc) holds what must not be built from" in err
    assert ".venv" in err
    assert "data.csv" in err
    assert "Traceback" not in err
