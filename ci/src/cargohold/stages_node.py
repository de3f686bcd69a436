"""Dependency, build and runtime stages of a Node service, as code.

    runtime-base   node alone (no npm, no shell)                       key: that base
    dependencies   package.json + package-lock.json → node_modules   key: the lockfile + base
    build          node_modules + sources → the production build      key: the sources + deps
    app            the server files → /app                            key: those files
    runtime        runtime-base + /app/dist + the server files: the stages' own layers

As for Python services, each stage produces one folder (where the runtime keeps
it) and reads only the folders it names, so the cache can stand in for any of
them and the runtime is assembled from their layers. The runtime gets no
node_modules, no dev dependencies and no sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import dagger
from dagger import dag

from cargohold.cache import npm_cache
from cargohold.config import NodeConfig
from cargohold.keys import RUNTIME_BASE
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

    async def with_base_facts(self) -> NodeStages:
        """These stages as they are: nothing about the Node bases changes how they build."""
        return self

    def base_of(self, stage: str) -> str | None:
        """The base image ``stage`` is built from (None: it needs none)."""
        if stage in ("dependencies", "build"):
            return self.builder_image
        return self.runtime_image if stage == RUNTIME_BASE else None

    def reads(self, stage: str) -> tuple[str, ...]:
        """The stages whose folders ``stage`` builds on (they must be in the engine first)."""
        return ("dependencies",) if stage == "build" else ()

    def dev_reads(self) -> tuple[str, ...]:
        """The stages lint and unit tests run on."""
        return ("dependencies",)

    def output_path(self, stage: str) -> str:
        """Where a stage's folder is, in its cache entry (and, for build and app, in the runtime)."""
        return {"dependencies": f"{SRC}/node_modules", "build": f"{APP}/{self.settings.dist}", "app": APP}[stage]

    def layers_apart(self, _stage: str) -> tuple[str, ...]:
        """Every Node stage's entry is one layer."""
        return ()

    def stage(self, name: str, outputs: Outputs) -> dagger.Directory:
        """Build one folder stage from the outputs of the stages it reads; its output folder."""
        if name == "dependencies":
            return self._dependencies().directory(f"{SRC}/node_modules")
        if name == "build":
            return self._build(outputs).directory(f"{SRC}/{self.settings.dist}")
        files = list(self.settings.runtime_files)
        return dag.directory().with_directory(".", self.src, include=files) if files else dag.directory()

    def runtime_base(self) -> dagger.Container:
        """Node alone: the runtime's first layers (the user is numeric, no account needed)."""
        return dag.container().from_(self.runtime_image)

    def runtime_layers(self) -> tuple[tuple[str, str], ...]:
        """The stage folders the runtime stacks on its base, in order."""
        return tuple((stage, self.output_path(stage)) for stage in ("build", "app"))

    def runtime_env(self) -> tuple[tuple[str, str], ...]:
        """The runtime's environment (the service's own env comes after)."""
        return (("NODE_ENV", "production"), ("PATH", "/nodejs/bin:/usr/local/bin:/usr/bin:/bin"))

    def runtime_user(self) -> tuple[str, str]:
        """(user, working directory) of the runtime: non-root, numeric."""
        return f"{RUNTIME_UID}:{RUNTIME_UID}", APP

    def dev(self, outputs: Outputs) -> dagger.Container:
        """Dependencies and the whole context: where lint, type checks and unit tests run."""
        return (
            dag.container()
            .from_(self.builder_image)
            .with_directory(SRC, self.src, exclude=["node_modules"])
            # Mounted, not copied: tens of thousands of files would be copied into every build.
            .with_mounted_directory(f"{SRC}/node_modules", outputs["dependencies"])
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
