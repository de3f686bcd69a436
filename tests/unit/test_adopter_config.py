"""Issue 9: another repository's configuration (examples/adopter) on a machine set up for this one."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from cargohold.cli import main
from cargohold.config import load_config

ROOT = Path(__file__).parents[2]
ADOPTER = ROOT / "examples" / "adopter" / "cargohold.toml"
MACHINE_FILE = '[services.backend.variants.cpu]\nfind-links = "/srv/wheels"\nindex-url = ""\n'


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    """An environment whose machine overrides file names this repository's backend."""
    path = tmp_path / "overrides.toml"
    path.write_text(MACHINE_FILE)
    return {"CARGOHOLD_USER_CONFIG": str(path)}


def test_the_adopter_file_is_valid_and_names_only_its_own_service(machine: dict[str, str]) -> None:
    config = load_config(ADOPTER, machine)
    assert list(config.services) == ["predictor"]
    predictor = config.service("predictor")
    assert predictor.kind.value == "python"
    assert predictor.python is not None
    assert predictor.python.bake is not None


def test_the_machine_file_still_applies_to_the_repository_that_has_the_service(machine: dict[str, str]) -> None:
    variant = load_config(ROOT / "cargohold.toml", machine).service("backend").variants["cpu"]
    assert variant.find_links == "/srv/wheels", variant


def test_an_explicit_override_for_a_missing_service_is_still_an_error() -> None:
    env = {"CARGOHOLD_OVERRIDES": "services.backend.port = 1"}
    with pytest.raises(Exception, match=r"services\.backend\.path: missing"):
        load_config(ADOPTER, env)


def test_validate_accepts_the_adopter_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ADOPTER), "validate"]) == 0
    assert "valid (project adopter-demo)" in capsys.readouterr().out


def test_the_installed_package_has_a_cargohold_command() -> None:
    scripts = tomllib.loads((ROOT / "ci" / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["cargohold"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
