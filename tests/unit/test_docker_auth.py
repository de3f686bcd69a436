"""Issue 9: cargohold's registry client uses the login ``docker login`` stored, as the engine does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cargohold.docker_auth import docker_config_path, docker_login


def _config(tmp_path: Path, auths: dict[str, object]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths, "credsStore": ""}))
    return {"DOCKER_CONFIG": str(tmp_path), "HOME": "/nonexistent"}


def test_an_inline_login_is_found_by_host(tmp_path: Path) -> None:
    auth = base64.b64encode(b"octocat:ghp_secret:with-colon").decode()
    env = _config(tmp_path, {"ghcr.io": {"auth": auth}, "https://registry.gitlab.com": {"auth": "eDp5"}})
    assert docker_login("ghcr.io", env) == ("octocat", "ghp_secret:with-colon")
    assert docker_login("registry.gitlab.com", env) == ("x", "y")
    assert docker_login("quay.io", env) is None


def test_username_and_password_fields_work_too(tmp_path: Path) -> None:
    env = _config(tmp_path, {"registry.example.com:5000": {"username": "ci", "password": "pw"}})
    assert docker_login("registry.example.com:5000", env) == ("ci", "pw")


@pytest.mark.parametrize("entry", [{"auth": "not base64!"}, {"auth": base64.b64encode(b"no-colon").decode()}, {}])
def test_a_malformed_entry_is_no_login(tmp_path: Path, entry: dict[str, str]) -> None:
    assert docker_login("ghcr.io", _config(tmp_path, {"ghcr.io": entry})) is None


def test_no_file_or_a_broken_file_is_no_login(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert docker_login("ghcr.io", env) is None
    (tmp_path / "config.json").write_text("{ nope")
    assert docker_login("ghcr.io", env) is None


def test_the_default_file_is_in_home() -> None:
    assert docker_config_path({"HOME": "/home/ci"}) == Path("/home/ci/.docker/config.json")
