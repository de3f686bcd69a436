"""The command line's contract: exit codes and one-line errors, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cargohold.cli import main

ROOT = Path(__file__).parents[2]


def test_validate_accepts_the_repository_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "cargohold.toml"), "validate"]) == 0
    assert "valid (project cargohold-demo)" in capsys.readouterr().out


def test_an_invalid_file_exits_2_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cargohold.toml"
    bad.write_text('[project]\nname = "x"\n[images]\npython = "NOPE"\n')
    assert main(["--config", str(bad), "validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5, err  # images.python malformed; python-build, node, node-runtime, postgres missing
    assert all(line.startswith(f"error: {bad}: images.") for line in err), err
    assert "Traceback" not in "\n".join(err)


def test_an_unknown_option_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: No such option: --bogus")
    assert err[0].endswith("see 'python pipelines.py --help'")


def test_without_any_engine_the_main_command_exits_2_naming_the_options(tmp_path: Path) -> None:
    # No runner host, native route off, and a PATH without docker or dagger.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_EXPERIMENTAL_DAGGER", "CARGOHOLD_"))}
    env |= {
        "CARGOHOLD_ENGINE_DIR": "none",
        "PATH": str(Path(sys.executable).parent),
        "CARGOHOLD_CACHE_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "pipelines.py", "ci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for option in ("_EXPERIMENTAL_DAGGER_RUNNER_HOST", "CARGOHOLD_ENGINE_DIR", "Docker"):
        assert option in lines[0]


def test_a_command_that_exits_1_makes_main_return_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ci --only with an unknown task is a usage problem (2); a typer.Exit(1) from a command must come back as 1.
    import typer  # noqa: PLC0415

    from cargohold import cli  # noqa: PLC0415

    @cli.app.command("exit-one-for-test", hidden=True)
    def _exit_one() -> None:
        raise typer.Exit(1)

    try:
        assert main(["exit-one-for-test"]) == 1
    finally:
        cli.app.registered_commands.pop()


@pytest.mark.parametrize(
    ("token", "wanted"),
    [
        ("env:CARGOHOLD_TEST_TOKEN_THAT_IS_NOT_SET", "missing or empty; set it before publishing"),
        ("ghp_pasted_token_123", "say where the token is, as env:NAME or file:PATH"),
        ("file:/nonexistent/token", "missing or empty; set it before publishing"),
    ],
)
def test_a_missing_or_pasted_token_fails_before_anything_else(
    token: str, wanted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(ROOT / "cargohold.toml"), "publish", "--to", "ghcr.io/acme", "--version", "1.0.0"]
    assert main([*argv, "--username", "bot", "--token", token]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert wanted in err[0]
    assert "ghp_pasted" not in err[0], "a pasted token must never be echoed"
