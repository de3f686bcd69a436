"""A catalogue of broken cargohold.toml files: each gets exit code 2 and a line naming key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.cli import main

PIN = "python:3.11-slim@sha256:" + "a" * 64
HEAD = f"""
[project]
name = "acme"
[images]
python = "{PIN}"
python-build = "{PIN}"
node = "{PIN}"
node-runtime = "{PIN}"
postgres = "{PIN}"
"""
SERVICE = """
[services.api]
path = "svc"
kind = "python"
port = 8000
command = ["uvicorn", "app:app"]
"""

CATALOGUE = {
    "missing project name": (HEAD.replace('name = "acme"', ""), "project.name: missing"),
    "wrong type for port": (
        HEAD + SERVICE.replace("8000", '"eight"'),
        "services.api.port: Input should be a valid integer",
    ),
    "port out of range": (
        HEAD + SERVICE.replace("8000", "70000"),
        "services.api.port: Input should be less than or equal to 65535",
    ),
    "unknown service kind": (
        HEAD + SERVICE.replace('"python"', '"rust"'),
        "services.api.kind: Input should be 'python' or 'node'",
    ),
    "path outside the repository": (
        HEAD + SERVICE.replace('"svc"', '"../elsewhere"'),
        "must be a folder inside the repository",
    ),
    "absolute path": (HEAD + SERVICE.replace('"svc"', '"/srv/api"'), "must be a folder inside the repository"),
    "missing service folder": (
        HEAD + SERVICE.replace('"svc"', '"nothere"'),
        "services.api.path: nothere does not exist",
    ),
    "bad image reference": (
        HEAD.replace(f'node = "{PIN}"', 'node = "Node:22"'),
        "images.node: image reference 'Node:22'",
    ),
    "malformed digest": (HEAD.replace(f'postgres = "{PIN}"', 'postgres = "postgres@sha256:xyz"'), "64 lower-case hex"),
    "unknown key": (HEAD + SERVICE + "colour = 'red'\n", "services.api.colour: unknown key"),
    "empty command": (HEAD + SERVICE.replace('["uvicorn", "app:app"]', "[]"), "services.api.command"),
    "health not a path": (HEAD + SERVICE + 'health = "health"\n', "must be an HTTP path"),
    "unknown dependency": (HEAD + SERVICE + 'depends-on = ["mysql"]\n', "services.api.depends-on: unknown mysql"),
    "two default variants": (
        HEAD + SERVICE + "[services.api.variants.a]\ndefault = true\n[services.api.variants.b]\ndefault = true\n",
        "exactly one variant must say default = true",
    ),
    "bake without output": (HEAD + SERVICE + '[services.api.python]\nbake = ["make"]\n', "bake needs bake-output"),
    "node settings on a python service": (HEAD + SERVICE + "[services.api.node]\n", "a python service takes [python]"),
    "bad budget": (HEAD + SERVICE + 'budget = "lots"\n', "services.api.budget"),
    "bad service name": (HEAD + SERVICE.replace("services.api", "services.API"), "service name 'API'"),
    "not TOML": ("[project\n", "not valid TOML"),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_broken_configuration_exits_2_with_a_clear_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, wanted = CATALOGUE[name]
    (tmp_path / "svc").mkdir()
    config = tmp_path / "cargohold.toml"
    config.write_text(text)
    assert main(["--config", str(config), "validate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    assert any(wanted in line for line in lines), f"wanted a line with {wanted!r}, got {lines}"


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["build", "--service", "nope"], "unknown service 'nope'; cargohold.toml has backend, frontend"),
        (["build", "--service", "backend", "--variant", "rocm"], "unknown variant 'rocm'; this service has cpu, cuda"),
        (["build", "--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_build_arguments_exit_2_before_anything_starts(
    argv: list[str], wanted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(Path(__file__).parents[2] / "cargohold.toml"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert wanted in err[0]
