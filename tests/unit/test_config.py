from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.config import apply_overrides, load_config, parse_config
from cargohold.errors import ConfigError

ROOT = Path(__file__).parents[2]
PINNED = "python:3.11-slim@sha256:" + "a" * 64

VALID = {
    "project": {"name": "acme"},
    "images": {"python": PINNED, "python-build": PINNED, "node": PINNED, "node-runtime": PINNED, "postgres": PINNED},
}


def test_the_repository_file_is_valid() -> None:
    config = load_config(ROOT / "cargohold.toml", environ={})
    assert config.project.name == "cargohold-demo"
    assert config.images.reference("python-build").digest is not None


def test_every_problem_is_reported_one_line_each_naming_the_key() -> None:
    raw = {"project": {"name": "Bad Name", "colour": "red"}, "images": {"python": "python:3.11@md5:xyz"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    lines = caught.value.lines()
    assert any("project.name" in line for line in lines), lines
    assert any("project.colour: unknown key" in line for line in lines), lines
    assert any("images.python" in line and "digest" in line for line in lines), lines
    assert any("images.node: missing" in line for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_a_toml_syntax_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cargohold.toml"
    bad.write_text("[project\nname = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad, environ={})
    lines = caught.value.lines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{bad}: not valid TOML (")
    assert "line 1" in lines[0]


def test_a_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found; run from the repository root or pass --config"):
        load_config(tmp_path / "nope.toml", environ={})


def test_environment_overrides_images_registry_and_ca_without_editing_the_file() -> None:
    env = {
        "CARGOHOLD_IMAGE_PYTHON_BUILD": "127.0.0.1:5000/base/python-build@sha256:" + "b" * 64,
        "CARGOHOLD_REGISTRY": "127.0.0.1:5000/acme",
        "CARGOHOLD_CA_CERTIFICATES": "/a.pem:/b.pem",
    }
    config = parse_config(apply_overrides(VALID, env))
    assert config.images.python_build.startswith("127.0.0.1:5000/base/python-build@")
    assert config.images.python == PINNED
    assert config.project.registry == "127.0.0.1:5000/acme"
    assert config.build.ca_certificates == ("/a.pem", "/b.pem")


def test_an_override_for_an_unknown_image_role_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"images\.pyton: unknown key"):
        parse_config(apply_overrides(VALID, {"CARGOHOLD_IMAGE_PYTON": PINNED}))


def test_ca_bundle_defaults_to_the_hosts_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "host.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = parse_config(VALID)
    assert config.ca_bundle_paths({"SSL_CERT_FILE": str(bundle)}) == [bundle]
    assert config.ca_bundle_paths({}) == []
    assert config.ca_bundle_paths({"PIP_CERT": str(tmp_path / "missing.pem")}) == []


def test_an_explicit_empty_ca_list_means_none() -> None:
    config = parse_config(apply_overrides(VALID, {"CARGOHOLD_CA_CERTIFICATES": ""}))
    assert config.ca_bundle_paths({"PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}) == []


def test_a_machines_own_overrides_merge_before_the_environment(tmp_path: Path) -> None:
    machine = tmp_path / "overrides.toml"
    machine.write_text('project.registry = "10.0.0.5:5000/team"\n[images]\nnode = "' + PINNED + '"\n')
    env = {"CARGOHOLD_USER_CONFIG": str(machine), "CARGOHOLD_REGISTRY": "127.0.0.1:5000/mine"}
    config = parse_config(apply_overrides(VALID, env))
    assert config.project.registry == "127.0.0.1:5000/mine"  # the environment wins
    assert config.images.node == PINNED
    assert (
        parse_config(apply_overrides(VALID, {"CARGOHOLD_USER_CONFIG": str(machine)})).project.registry
        == "10.0.0.5:5000/team"
    )
