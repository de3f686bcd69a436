"""``cargohold.toml``: the models, the loader and the environment overrides.

Pure: no engine, no network. Every problem in a file is reported at once, one
line each, naming the key and the fix (``ConfigError``), never a traceback.

Overrides from the environment, so tests and CI point a run elsewhere without
editing the file:

- ``CARGOHOLD_IMAGE_<ROLE>`` replaces ``[images].<role>`` (``-`` becomes ``_``),
  e.g. ``CARGOHOLD_IMAGE_PYTHON_BUILD``;
- ``CARGOHOLD_REGISTRY`` replaces ``[project].registry``;
- ``CARGOHOLD_CA_CERTIFICATES`` (paths joined by ``:``; empty for none)
  replaces ``[build].ca-certificates``;
- ``CARGOHOLD_OVERRIDES`` is a TOML fragment merged over the file, for any
  other key, e.g. ``services.backend.variants.cpu = { find-links = "wheels" }``.

Before those, a machine's own overrides are merged from
``$CARGOHOLD_USER_CONFIG`` (default ``~/.config/cargohold/overrides.toml``):
what one machine needs (a local wheelhouse, a mirror) without touching the
repository, as ``pip.conf`` does for pip.
"""

from __future__ import annotations

import enum
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError, field_validator, model_validator

from cargohold.errors import ConfigError
from cargohold.reference import Reference

CONFIG_FILE: Final = "cargohold.toml"
IMAGE_VAR_PREFIX: Final = "CARGOHOLD_IMAGE_"
REGISTRY_VAR: Final = "CARGOHOLD_REGISTRY"
CA_VAR: Final = "CARGOHOLD_CA_CERTIFICATES"
OVERRIDES_VAR: Final = "CARGOHOLD_OVERRIDES"
USER_CONFIG_VAR: Final = "CARGOHOLD_USER_CONFIG"
DEPENDENCY_KINDS: Final = ("postgres",)  # what a service may name in depends-on
# Where a host already says which CA bundle its Python tools trust.
HOST_CA_VARS: Final = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


_NAME: Final = re.compile(r"^[a-z][a-z0-9-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ProjectConfig(_Model):
    """``[project]``: the monorepo as a whole."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    registry: str | None = Field(
        default=None,
        description="registry/namespace images and cache tags go to; unset means the local registry",
    )
    cache: str | None = Field(
        default=None, description="registry/namespace for stage cache entries; unset means the image registry"
    )
    platform: str = "linux/amd64"
    source: str = Field(default="", description="the repository URL, for the org.opencontainers.image.source label")

    @field_validator("registry", "cache")
    @classmethod
    def _a_registry_namespace(cls, value: str | None) -> str | None:
        """``host[:port][/namespace]``, as image references start (checked here, not at the first push)."""
        if value is not None:
            try:
                Reference.parse(f"{value}/x")
            except ConfigError:
                raise ValueError(f"{value!r} is not a registry and namespace (host[:port]/namespace)") from None
        return value


class ImagesConfig(_Model):
    """``[images]``: the base images, pinned by digest for real users."""

    python: str
    python_build: str = Field(alias="python-build")
    node: str
    node_runtime: str = Field(alias="node-runtime")
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

    allow_unpinned: bool = Field(
        default=False, alias="allow-unpinned", description="accept base images not pinned by digest"
    )

    ca_certificates: tuple[str, ...] | None = Field(
        default=None,
        alias="ca-certificates",
        description="PEM files build steps trust for HTTPS; unset means the host's own bundle",
    )


class ServiceKind(enum.StrEnum):
    """Which stage recipe builds a service."""

    PYTHON = "python"
    NODE = "node"


class VariantConfig(_Model):
    """``[services.<name>.variants.<variant>]``: one flavour of an image (``cpu``, ``cuda``)."""

    index_url: str | None = Field(default=None, alias="index-url", description="index for the heavy requirements")
    find_links: str | None = Field(
        default=None, alias="find-links", description="a wheel folder (repo-relative) or URL"
    )
    heavy: str | None = Field(default=None, description="this variant's heavy requirements file, else the service's")
    default: bool = Field(default=False, description="the variant whose tags carry no suffix")
    budget: ByteSize | None = Field(default=None, description="compressed size budget; else the service's")

    @field_validator("index_url", "find_links")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


# What the bake's environment holds: every package of the service, or only the heavy requirements
# (which then must hold everything the bake imports: torch and torch's own dependencies).
BakePackages = Literal["all", "heavy"]


class PythonConfig(_Model):
    """``[services.<name>.python]``: how a Python service's stages are made."""

    lockfile: str = "requirements.lock"
    heavy: str | None = Field(default=None, description="requirements of heavy, rarely changing packages")
    dev_lockfile: str | None = Field(default=None, alias="dev-lockfile")
    app: tuple[str, ...] = ("app",)
    bake: tuple[str, ...] | None = Field(default=None, description="command that bakes the model at build time")
    bake_output: str | None = Field(default=None, alias="bake-output")
    bake_inputs: tuple[str, ...] | None = Field(
        default=None,
        alias="bake-inputs",
        description="the files and folders the bake reads (default: app); a change elsewhere keeps the model",
    )
    bake_packages: BakePackages = Field(
        default="all",
        alias="bake-packages",
        description='the packages the bake runs with: "all" (heavy and the lockfile) or "heavy" (a lockfile change '
        "keeps the model)",
    )
    prune: tuple[str, ...] = Field(
        default=(), description="globs under site-packages (and the heavy folder) removed before the runtime"
    )
    bytecode: bool = Field(
        default=True,
        description="pip writes .pyc files into the runtime's packages; false: a smaller image, slower first imports",
    )
    heavy_split: tuple[str, ...] = Field(
        default=(),
        alias="heavy-split",
        description="globs under the heavy folder that each get a layer of their own, after the rest: the engine "
        "compresses a stage's layers side by side",
    )
    layer_per_package: bool = Field(
        default=False,
        alias="layer-per-package",
        description="each package of the lockfile in a layer and cache entry of its own: a lockfile change installs "
        "only the packages whose lines changed",
    )

    @model_validator(mode="after")
    def _bake_needs_output(self) -> PythonConfig:
        if self.bake and not self.bake_output:
            raise ValueError("bake needs bake-output, the absolute folder the command writes")
        if self.bake_output and not self.bake_output.startswith("/"):
            raise ValueError(f"bake-output {self.bake_output!r} must be an absolute path in the image")
        if self.bake_inputs is not None and not (self.bake and self.bake_inputs):
            raise ValueError("bake-inputs needs bake, and at least one file or folder")
        if self.bake_packages == "heavy" and not self.bake:
            raise ValueError('bake-packages = "heavy" needs bake')
        return self

    @property
    def baked_from(self) -> tuple[str, ...]:
        """What the bake reads of the service folder: its declared inputs, else the app folders."""
        return self.bake_inputs or self.app


class NodeConfig(_Model):
    """``[services.<name>.node]``: how a Node service's stages are made."""

    build: tuple[str, ...] = ("npm", "run", "build")
    dist: str = "dist"
    runtime_files: tuple[str, ...] = Field(default=(), alias="runtime-files")


class ContextConfig(_Model):
    """``[services.<name>.context]``: what of the service folder reaches the build."""

    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()
    max_file_size: ByteSize = Field(default=ByteSize(5_000_000), alias="max-file-size")


class ServiceConfig(_Model):
    """``[services.<name>]``: one service, built from its own folder."""

    path: str
    kind: ServiceKind
    port: int = Field(ge=1, le=65535)
    health: str = "/health"
    command: tuple[str, ...] = Field(min_length=1, description="the runtime entrypoint")
    lint: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    env: dict[str, str] = {}
    integration_env: dict[str, str] = Field(
        default={}, alias="integration-env", description="environment added when it runs for integration tests"
    )
    depends_on: tuple[str, ...] = Field(default=(), alias="depends-on")
    budget: ByteSize | None = None
    allow_findings: tuple[str, ...] = Field(
        default=(), alias="allow-findings", description="image-facts findings this service accepts, e.g. test-files"
    )
    variants: dict[str, VariantConfig] = {"default": VariantConfig(default=True)}
    python: PythonConfig | None = None
    node: NodeConfig | None = None
    context: ContextConfig = ContextConfig()
    shared: tuple[str, ...] = Field(default=(), description="repo files outside the folder it depends on")

    @field_validator("path")
    @classmethod
    def _inside_the_repo(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or value in ("", "."):
            raise ValueError(f"{value!r} must be a folder inside the repository, relative to cargohold.toml")
        return str(path)

    @field_validator("health")
    @classmethod
    def _is_a_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an HTTP path such as /health")
        return value

    @model_validator(mode="after")
    def _kind_settings(self) -> ServiceConfig:
        defaults = [name for name, v in self.variants.items() if v.default]
        if len(self.variants) > 1 and len(defaults) != 1:
            raise ValueError(f"exactly one variant must say default = true (found {len(defaults)})")
        if self.kind is ServiceKind.PYTHON and self.node is not None:
            raise ValueError("a python service takes [python] settings, not [node]")
        if self.kind is ServiceKind.NODE and self.python is not None:
            raise ValueError("a node service takes [node] settings, not [python]")
        return self

    @property
    def python_settings(self) -> PythonConfig:
        """The ``[python]`` table, or its defaults."""
        return self.python or PythonConfig()

    @property
    def node_settings(self) -> NodeConfig:
        """The ``[node]`` table, or its defaults."""
        return self.node or NodeConfig()

    def variant(self, name: str | None) -> tuple[str, VariantConfig]:
        """The named variant, or the default one; ConfigError naming the known ones."""
        if name is None:
            return next(((n, v) for n, v in self.variants.items() if v.default), next(iter(self.variants.items())))
        if name not in self.variants:
            raise ConfigError([f"unknown variant {name!r}; this service has {', '.join(self.variants)}"])
        return name, self.variants[name]

    def budget_for(self, variant: VariantConfig) -> int | None:
        """The compressed-size budget in bytes: the variant's, else the service's."""
        budget = variant.budget if variant.budget is not None else self.budget
        return int(budget) if budget is not None else None


class IntegrationConfig(_Model):
    """``[integration]``: the end-to-end tests `ci` runs against the built images."""

    path: str = "integration"
    requirements: str = "requirements.lock"
    command: tuple[str, ...] = Field(default=("pytest", "-q"), min_length=1)


class Config(_Model):
    """The whole file."""

    project: ProjectConfig
    images: ImagesConfig
    build: BuildConfig = BuildConfig()
    services: dict[str, ServiceConfig] = {}
    integration: IntegrationConfig | None = None

    @model_validator(mode="after")
    def _pinned_base_images(self) -> Config:
        if self.build.allow_unpinned:
            return self
        unpinned = [role for role in type(self.images).model_fields if not self.images.reference(role).digest]
        if unpinned:
            names = ", ".join(f"images.{r.replace('_', '-')}" for r in unpinned)
            raise ValueError(f"{names}: not pinned by digest; pin (name@sha256:…) or set build.allow-unpinned = true")
        return self

    @model_validator(mode="after")
    def _known_dependencies(self) -> Config:
        known = set(DEPENDENCY_KINDS) | set(self.services)
        for name, svc in self.services.items():
            if unknown := sorted(set(svc.depends_on) - known):
                choices = ", ".join(sorted(known - {name}))
                raise ValueError(f"services.{name}.depends-on: unknown {', '.join(unknown)}; known: {choices}")
        return self

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"service name {name!r}: use lower-case letters, digits and -")
        return value

    def service(self, name: str) -> ServiceConfig:
        """The named service; ConfigError naming the known ones."""
        if name not in self.services:
            known = ", ".join(self.services) or "none"
            raise ConfigError([f"unknown service {name!r}; cargohold.toml has {known}"])
        return self.services[name]

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
    config = parse_config(apply_overrides(raw, environ), source=str(path))
    missing = [
        f"services.{name}.path: {svc.path} does not exist next to {path.name}; fix the path"
        for name, svc in config.services.items()
        if not (path.parent / svc.path).is_dir()
    ]
    if missing:
        raise ConfigError(missing, str(path))
    return config


def parse_config(raw: Mapping[str, Any], source: str = CONFIG_FILE) -> Config:
    """Validate a parsed document; ConfigError with one line per problem."""
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError([_problem_line(err) for err in e.errors()], source) from None


def apply_overrides(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The document with the ``CARGOHOLD_*`` environment overrides applied."""
    doc = _merge({}, raw)
    if (machine := user_config_path(environ)).is_file():
        try:
            doc = _merge(doc, _this_repository_part(tomllib.loads(machine.read_text()), doc))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError([f"not valid TOML ({e})"], str(machine)) from None
    if fragment := environ.get(OVERRIDES_VAR):
        try:
            doc = _merge(doc, tomllib.loads(fragment))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError([f"not valid TOML ({e})"], OVERRIDES_VAR) from None
    images = doc.setdefault("images", {})
    for var, value in environ.items():
        if var.startswith(IMAGE_VAR_PREFIX) and value:
            images[var.removeprefix(IMAGE_VAR_PREFIX).lower().replace("_", "-")] = value
    if registry := environ.get(REGISTRY_VAR):
        doc.setdefault("project", {})["registry"] = registry
    if CA_VAR in environ:
        doc.setdefault("build", {})["ca-certificates"] = [p for p in environ[CA_VAR].split(":") if p]
    return doc


def _this_repository_part(machine: dict[str, Any], doc: Mapping[str, Any]) -> dict[str, Any]:
    """The machine file serves every repository on the machine: its tables for services this one lacks are left out."""
    services = machine.get("services")
    if not isinstance(services, Mapping):
        return machine
    known = doc.get("services", {})
    return {**machine, "services": {name: table for name, table in services.items() if name in known}}


def user_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The machine's overrides file: ``$CARGOHOLD_USER_CONFIG``, else under ``$XDG_CONFIG_HOME`` or ``~/.config``."""
    if explicit := environ.get(USER_CONFIG_VAR):
        return Path(explicit)
    if base := environ.get("XDG_CONFIG_HOME"):
        return Path(base) / "cargohold" / "overrides.toml"
    # From the given environment only, so an explicit mapping (as in tests) never reads this machine's file.
    return Path(environ.get("HOME", "/nonexistent")) / ".config" / "cargohold" / "overrides.toml"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged into a copy of ``base``, tables recursively."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = _merge({}, value) if isinstance(value, Mapping) else value
    return merged


def _problem_line(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "missing":
        return f"{key}: missing; add it (see README 'Configuration reference')"
    if kind == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}"
