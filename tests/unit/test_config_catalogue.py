"""A catalogue of broken cargohold.toml files: each gets exit code 2 and a line naming key and fix."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cargohold.cli import main
from tests.reliability import record

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
    "bake packages without bake": (
        HEAD + SERVICE + '[services.api.python]\nbake-packages = "heavy"\n',
        'bake-packages = "heavy" needs bake',
    ),
    "unknown bake packages": (
        HEAD + SERVICE + '[services.api.python]\nbake-packages = "torch"\n',
        "services.api.python.bake-packages",
    ),
    "node settings on a python service": (HEAD + SERVICE + "[services.api.node]\n", "a python service takes [python]"),
    "bad budget": (HEAD + SERVICE + 'budget = "lots"\n', "services.api.budget"),
    "bad service name": (HEAD + SERVICE.replace("services.api", "services.API"), "service name 'API'"),
    "not TOML": ("[project\n", "not valid TOML"),
    "unpinned base image": (HEAD.replace(f'node = "{PIN}"', 'node = "node:22"'), "images.node: not pinned by digest"),
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


# --- the same catalogue, and bad arguments, through the real command line ---------------------------

ROOT = Path(__file__).parents[2]
REPO_CONFIG = str(ROOT / "cargohold.toml")
PUBLISH = ["publish", "--to", "ghcr.io/acme", "--version", "1.0.0"]
# (argv after --config, extra environment, what the one line must say); none of these may reach an engine.
BAD_ARGUMENTS = {
    "unknown command": (["deploy"], {}, "No such command 'deploy'"),
    "unknown option": (["build", "--bogus"], {}, "No such option: --bogus"),
    "unknown service (build)": (["build", "--service", "nope"], {}, "unknown service 'nope'"),
    "unknown service (ci)": (["ci", "--service", "nope"], {}, "unknown service 'nope'"),
    "unknown variant (build)": (["build", "--service", "backend", "--variant", "rocm"], {}, "unknown variant 'rocm'"),
    "unknown variant (plan)": (["plan", "--service", "frontend", "--variant", "gpu"], {}, "unknown variant 'gpu'"),
    "unknown task": (["ci", "--only", "deploy"], {}, "--only deploy: use lint, test, build or integration"),
    "not a number": (["prune-cache", "--keep", "many"], {}, "Invalid value for '--keep'"),
    "publish without --to": (["publish", "--version", "1.0.0"], {}, "Missing option '--to'"),
    "a pasted token": ([*PUBLISH, "--username", "bot", "--token", "ghp_x"], {}, "say where the token is"),
    "a missing token": ([*PUBLISH, "--username", "bot", "--token", "env:NOT_SET_ANYWHERE"], {}, "missing or empty"),
    "a token without a user": ([*PUBLISH, "--token", "env:HOME"], {}, "--token needs --username"),
    "a malformed version": (["publish", "--to", "ghcr.io/acme", "--version", "1.x"], {}, "version '1.x' is not semver"),
    "neither version nor branch": (["publish", "--to", "ghcr.io/acme"], {}, "give --version for a release"),
    "an unknown variant to publish": ([*PUBLISH, "--variant", "rocm"], {}, "--variant rocm: no service has it"),
    "a missing config file": (["validate"], {"config": "/nonexistent/cargohold.toml"}, "/nonexistent/cargohold.toml"),
    "broken overrides": (["validate"], {"CARGOHOLD_OVERRIDES": "project.name = ["}, "CARGOHOLD_OVERRIDES"),
    "a bad base-image source": (["plan"], {"CARGOHOLD_BASE_IMAGES": "somewhere"}, "CARGOHOLD_BASE_IMAGES=somewhere"),
    "a bad registry override": (
        ["validate"],
        {"CARGOHOLD_REGISTRY": "Not A Registry"},
        "project.registry: 'Not A Registry' is not a registry",
    ),
}


def _run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("_EXPERIMENTAL_DAGGER", "CARGOHOLD_"))}
    clean |= {"CARGOHOLD_USER_CONFIG": "/nonexistent/overrides.toml", "CARGOHOLD_ENGINE_DIR": "none"}
    config = env.pop("config", REPO_CONFIG)
    return subprocess.run([sys.executable, str(ROOT / "pipelines.py"), "--config", config, *argv],
                          env=clean | env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def _cases(tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """Every broken file of the catalogue (``validate``) and every bad argument."""
    (tmp_path / "svc").mkdir()
    cases = {}
    for name, (text, wanted) in CATALOGUE.items():
        config = tmp_path / f"{len(cases)}.toml"
        config.write_text(text)
        cases[f"file: {name}"] = (["validate"], {"config": str(config)}, wanted)
    arguments = {f"argument: {name}": (argv, dict(env), wanted) for name, (argv, env, wanted) in BAD_ARGUMENTS.items()}
    return cases | arguments


def test_every_bad_input_through_the_real_command_line_exits_2_with_exactly_one_line(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(cases, pool.map(lambda c: _run_cli(c[0], c[1]), cases.values()), strict=True))
    problems = []
    for name, result in done.items():
        lines = result.stderr.strip().splitlines()
        wanted = cases[name][2]
        if result.returncode != 2 or len(lines) != 1 or wanted not in lines[0] or "Traceback" in result.stderr:
            problems.append(f"{name}: wanted exit 2 and one line with {wanted!r}, got {result.returncode} {lines}")
    assert not problems, "\n".join(problems)
    record("bad inputs", "broken cargohold.toml files and bad arguments (real CLI, no engine)",
           f"{len(CATALOGUE)} broken files, {len(BAD_ARGUMENTS)} bad arguments or settings",
           "each: exit 2, exactly one line on stderr, no traceback", bad_inputs=len(cases))  # fmt: skip
