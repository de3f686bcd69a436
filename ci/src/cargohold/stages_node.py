"""Dependency, build and runtime stages of a Node service, as code.

    dependencies   package.json + package-lock.json → node_modules   key: the lockfile + base
    build          node_modules + sources → the production build      key: the sources + deps
    runtime        node alone (no npm, no shell) + dist/ + the server files

As for Python services, each stage produces one folder and reads only the
folders before it, so the cache can stand in for any of them. The runtime gets
no node_modules, no dev dependencies and no sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import dagger
from dagger import dag

from cargohold.cache import npm_cache
from cargohold.config import NodeConfig
from cargohold.trust import with_ca_bundle, without_ca_bundle

SRC: Final = "/src"
APP: Final = "/app"
RUNTIME_UID: Final = 10001
LOCKFILES: Final = ("package.json", "package-lock.json")

Outputs = Mapping[str, dagger.Directory]


@dataclass(frozen=True)
class NodeStages:
    """The stages of one Node service; every method is lazy graph assembly."""

    src: dagger.Directory
    settings: NodeConfig
    builder_image: str
    runtime_image: str
    ca_bundle: dagger.File | None = None

    def waves(self) -> tuple[tuple[str, ...], ...]:
        """The stages before the runtime, in waves: the stages of a wave build side by side."""
        return (("dependencies",), ("build",))

    def output_path(self, stage: str) -> str:
        """The folder a stage produces (what the cache stores)."""
        return {"dependencies": f"{SRC}/node_modules", "build": f"{SRC}/{self.settings.dist}"}[stage]

    def stage(self, name: str, outputs: Outputs) -> dagger.Directory:
        """Build one stage from the outputs of the stages before it; its output folder."""
        ctr = self._dependencies() if name == "dependencies" else self._build(outputs)
        return ctr.directory(self.output_path(name))

    def runtime(self, outputs: Outputs) -> dagger.Container:
        """Node alone, the built assets and the server files; a non-root numeric user."""
        return (
            dag.container()
            .from_(self.runtime_image)
            .with_directory(f"{APP}/{self.settings.dist}", outputs["build"])
            .with_directory(APP, self.src, include=list(self.settings.runtime_files))
            .with_env_variable("NODE_ENV", "production")
            .with_env_variable("PATH", "/nodejs/bin:/usr/local/bin:/usr/bin:/bin")
            .with_workdir(APP)
            .with_user(f"{RUNTIME_UID}:{RUNTIME_UID}")
        )

    def dev(self, outputs: Outputs) -> dagger.Container:
        """Dependencies and the whole context: where lint, type checks and unit tests run."""
        return (
            dag.container()
            .from_(self.builder_image)
            .with_directory(SRC, self.src, exclude=["node_modules"])
            .with_directory(f"{SRC}/node_modules", outputs["dependencies"])
            .with_workdir(SRC)
        )

    def _dependencies(self) -> dagger.Container:
        """``npm ci`` from the lockfile alone, so the stage changes only with it."""
        return (
            dag.container()
            .from_(self.builder_image)
            .with_(with_ca_bundle(self.ca_bundle))
            .with_(npm_cache())
            .with_directory(SRC, self.src, include=list(LOCKFILES))
            .with_workdir(SRC)
            .with_exec(["npm", "ci", "--no-audit", "--no-fund"])
            .with_(without_ca_bundle(self.ca_bundle))
        )

    def _build(self, outputs: Outputs) -> dagger.Container:
        return self.dev(outputs).with_exec(list(self.settings.build))
