"""``cargohold.toml``: the models, the loader and the environment overrides.

Pure: no engine, no network. Every problem in a file is reported at once, one
line each, naming the key and the fix (``ConfigError``), never a traceback.

Overrides from the environment, so tests and CI point a run elsewhere without
editing the file:

- ``CARGOHOLD_IMAGE_<ROLE>`` replaces ``[images].<role>`` (``-`` becomes ``_``),
  e.g. ``CARGOHOLD_IMAGE_PYTHON_BUILD``;
- ``CARGOHOLD_REGISTRY`` replaces ``[project].registry``;
- ``CARGOHOLD_CA_CERTIFICATES`` (paths joined by ``:``; empty for none)
  replaces ``[build].ca-certificates``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cargohold.errors import ConfigError
from cargohold.reference import Reference

CONFIG_FILE: Final = "cargohold.toml"
IMAGE_VAR_PREFIX: Final = "CARGOHOLD_IMAGE_"
REGISTRY_VAR: Final = "CARGOHOLD_REGISTRY"
CA_VAR: Final = "CARGOHOLD_CA_CERTIFICATES"
# Where a host already says which CA bundle its Python tools trust.
HOST_CA_VARS: Final = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ProjectConfig(_Model):
    """``[project]``: the monorepo as a whole."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    registry: str | None = Field(
        default=None,
        description="registry/namespace images and cache tags go to; unset means the local registry",
    )
    platform: str = "linux/amd64"


class ImagesConfig(_Model):
    """``[images]``: the base images, pinned by digest for real users."""

    python: str
    python_build: str = Field(alias="python-build")
    node: str
    postgres: str

    @field_validator("*")
    @classmethod
    def _is_reference(cls, value: str) -> str:
        try:
            Reference.parse(value)
        except ConfigError as e:
            # pydantic collects ValueErrors, so every bad reference is reported at once
            raise ValueError("; ".join(e.problems)) from None
        return value

    def reference(self, role: str) -> Reference:
        """The parsed reference of a role (``python-build`` or ``python_build``)."""
        return Reference.parse(getattr(self, role.replace("-", "_")))


class BuildConfig(_Model):
    """``[build]``: how build steps run."""

    ca_certificates: tuple[str, ...] | None = Field(
        default=None,
        alias="ca-certificates",
        description="PEM files build steps trust for HTTPS; unset means the host's own bundle",
    )


class Config(_Model):
    """The whole file."""

    project: ProjectConfig
    images: ImagesConfig
    build: BuildConfig = BuildConfig()

    def ca_bundle_paths(self, environ: Mapping[str, str] = os.environ) -> list[Path]:
        """The CA files build steps trust: configured, else the host's bundle, else none."""
        if self.build.ca_certificates is not None:
            return [Path(p) for p in self.build.ca_certificates]
        host = next((environ[v] for v in HOST_CA_VARS if environ.get(v)), None)
        return [Path(host)] if host and Path(host).is_file() else []


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """Read, override from the environment, and validate ``path``."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(["file not found; run from the repository root or pass --config"], str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"not valid TOML ({e})"], str(path)) from None
    return parse_config(apply_overrides(raw, environ), source=str(path))


def parse_config(raw: Mapping[str, Any], source: str = CONFIG_FILE) -> Config:
    """Validate a parsed document; ConfigError with one line per problem."""
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError([_problem_line(err) for err in e.errors()], source) from None


def apply_overrides(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The document with the ``CARGOHOLD_*`` environment overrides applied."""
    doc = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    images = doc.setdefault("images", {})
    for var, value in environ.items():
        if var.startswith(IMAGE_VAR_PREFIX) and value:
            images[var.removeprefix(IMAGE_VAR_PREFIX).lower().replace("_", "-")] = value
    if registry := environ.get(REGISTRY_VAR):
        doc.setdefault("project", {})["registry"] = registry
    if CA_VAR in environ:
        doc.setdefault("build", {})["ca-certificates"] = [p for p in environ[CA_VAR].split(":") if p]
    return doc


def _problem_line(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "missing":
        return f"{key}: missing; add it (see README 'Configuration reference')"
    if kind == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}"
