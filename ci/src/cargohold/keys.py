"""Content keys of stages and images: pure, the same on every machine for the same inputs.

A stage's key is a sha256 over everything that can change what it produces:
the recipe version, the base image digest, the stage's own input files (a
dependency stage sees only its lockfile and index settings), build settings,
the platform, and the keys of the stages it reads. Anything else (a README, a
test file, the commit being built) leaves the key alone, which is what lets a
fresh runner reuse the last run's work.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from cargohold.config import Config, ServiceConfig, ServiceKind
from cargohold.errors import ConfigError

# Bump a kind's recipe version whenever its stage code changes what a stage produces.
# 2: every stage's entry holds its folder where the runtime keeps it; runtime-base and app are stages.
RECIPE_VERSIONS: Final = {ServiceKind.PYTHON: 2, ServiceKind.NODE: 2}
RUNTIME_BASE: Final = "runtime-base"  # the stage whose entry is the whole base of the runtime
NODE_LOCKFILES: Final = ("package.json", "package-lock.json")


@dataclass(frozen=True)
class BuildTarget:
    """One image to build: a service in one variant."""

    service: str
    variant: str

    @property
    def label(self) -> str:
        """``backend:cpu`` — how reports name it."""
        return f"{self.service}:{self.variant}"


@dataclass(frozen=True)
class SourceTree:
    """A service's build context as content: repo-relative path → sha256 of its bytes."""

    files: Mapping[str, str]

    def file(self, path: str, service: str) -> str:
        """The digest of one file; ConfigError when the context lacks it."""
        if path not in self.files:
            raise ConfigError(
                [f"services.{service}: {path} is not in the service's build context; add it or fix the key"]
            )
        return self.files[path]

    def digest(self, keep: Callable[[str], bool] = lambda _: True) -> str:
        """One digest over the kept files, names included (a rename changes it)."""
        return _hash({p: d for p, d in sorted(self.files.items()) if keep(p)})


@dataclass(frozen=True)
class StageKeys:
    """The keys of one service and variant: each stage in build order, then the final image."""

    service: str
    variant: str
    stages: Mapping[str, str]  # stage name → key, in build order
    image: str  # the runtime image's key
    packages: str = ""  # with python.layer-per-package: what every package's key starts from (the builder)

    def short(self, stage: str) -> str:
        """The first 16 hex digits, for people."""
        return (self.image if stage == "runtime" else self.stages[stage])[:16]


def base_digests(config: Config) -> dict[str, str]:
    """Each image role's digest, or its whole reference when it is not pinned (then the key follows the tag)."""
    roles = ("python", "python-build", "node", "node-runtime", "postgres")
    return {role: (ref.digest or str(ref)) for role in roles if (ref := config.images.reference(role))}


def service_keys(
    config: Config, name: str, variant: str, *, tree: SourceTree, bases: Mapping[str, str], wheelhouse: str = ""
) -> StageKeys:
    """The keys of every stage of ``name`` in ``variant`` (pure)."""
    svc = config.service(name)
    common = {"recipe": RECIPE_VERSIONS[svc.kind], "platform": config.project.platform, "kind": svc.kind.value}
    packages = ""
    if svc.kind is ServiceKind.PYTHON:
        stages = _python_stage_keys(svc, name, variant, tree=tree, bases=bases, wheelhouse=wheelhouse, common=common)
        base, copied = bases["python"], svc.python_settings.app
        if svc.python_settings.layer_per_package:
            packages = _hash({**_python_builder(svc, bases, common), "stage": "package"})
    else:
        stages = _node_stage_keys(svc, name, tree=tree, bases=bases, common=common)
        base, copied = bases["node-runtime"], svc.node_settings.runtime_files
    # The runtime's own stages: its base (with the user) and the app's files, each an entry of its own.
    stages["app"] = _hash({**common, "stage": "app", "files": tree.digest(_under(copied))})
    stages[RUNTIME_BASE] = _hash({**common, "stage": RUNTIME_BASE, "base": base})
    image = _hash({**common, "stage": "runtime", "base": base, "inputs": stages, **_runtime_settings(svc, tree)})
    return StageKeys(name, variant, stages, image, packages)


def _python_stage_keys(
    svc: ServiceConfig,
    name: str,
    variant_name: str,
    *,
    tree: SourceTree,
    bases: Mapping[str, str],
    wheelhouse: str,
    common: Mapping[str, object],
) -> dict[str, str]:
    settings = svc.python_settings
    _, variant = svc.variant(variant_name)
    heavy_file = variant.heavy or settings.heavy
    builder = _python_builder(svc, bases, common)
    dependencies = {**builder, "stage": "dependencies", "lockfile": tree.file(settings.lockfile, name)}
    if settings.layer_per_package:  # only when set, like bytecode: the entry is stacked from the packages' layers
        dependencies["layers"] = "per-package"
    heavy = {"split": list(settings.heavy_split)} if settings.heavy_split else {}  # only when set, like bytecode
    keys = {
        "heavy": _hash({**heavy,
            **builder, "stage": "heavy", "requirements": tree.file(heavy_file, name) if heavy_file else None,
            # A wheel folder counts by its content (names and sizes), wherever it is; a URL by itself.
            "index_url": variant.index_url, "wheelhouse": wheelhouse,
            "find_links": variant.find_links if variant.find_links and "://" in variant.find_links else None,
        }),
        "dependencies": _hash(dependencies),
    }  # fmt: skip
    if settings.bake:
        for path in settings.bake_inputs or ():
            if not any(_under((path,))(p) for p in tree.files):
                msg = f"services.{name}.python.bake-inputs: {path} matches no file of the build context"
                raise ConfigError([f"{msg}; fix the path or add the file"])
        app = tree.digest(_under(settings.baked_from))
        after = dict(keys)
        if settings.bake_packages == "heavy":  # the bake sees torch alone: a lockfile change keeps the model
            if heavy_file is None:
                msg = f'services.{name}.python.bake-packages = "heavy" in variant {variant_name}, which has no heavy'
                raise ConfigError([f'{msg}; set python.heavy (or the variant\'s heavy), or bake-packages = "all"'])
            after = {"heavy": keys["heavy"], "packages": "heavy"}
        keys["bake"] = _hash({**builder, "stage": "bake", "after": after, "app": app, "command": list(settings.bake)})
    return keys


def _python_builder(svc: ServiceConfig, bases: Mapping[str, str], common: Mapping[str, object]) -> dict[str, object]:
    """What every builder stage of a Python service depends on: the base image and the install settings."""
    settings = svc.python_settings
    builder = {**common, "base": bases["python-build"], "prune": list(settings.prune)}
    if not settings.bytecode:  # only when set: the keys of every service that keeps the default stay as they were
        builder["bytecode"] = False
    return builder


def _node_stage_keys(
    svc: ServiceConfig, name: str, *, tree: SourceTree, bases: Mapping[str, str], common: Mapping[str, object]
) -> dict[str, str]:
    settings = svc.node_settings
    builder = {**common, "base": bases["node"]}
    deps = _hash({**builder, "stage": "dependencies", "lockfiles": [tree.file(p, name) for p in NODE_LOCKFILES]})
    sources = tree.digest()
    build = _hash({**builder, "stage": "build", "after": deps, "sources": sources, "command": list(settings.build)})
    return {"dependencies": deps, "build": build}


def _runtime_settings(svc: ServiceConfig, tree: SourceTree) -> dict[str, object]:
    """What of the service's configuration and files lands in the runtime image."""
    copied = svc.python_settings.app if svc.kind is ServiceKind.PYTHON else svc.node_settings.runtime_files
    return {
        "copied": tree.digest(_under(copied)),
        "command": list(svc.command),
        "env": dict(sorted(svc.env.items())),
        "port": svc.port,
        "health": svc.health,
    }


def _under(paths: tuple[str, ...]) -> Callable[[str], bool]:
    """True for a path that is one of ``paths`` or lies below one of them."""
    return lambda p: any(p == q or p.startswith(f"{q}/") or fnmatch.fnmatch(p, q) for q in paths)


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
