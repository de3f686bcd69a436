"""Dependency, build and runtime stages of a Node service, as code.

    dependencies   package.json + package-lock.json → npm ci   key: the lockfile
    build          dependencies + sources → the production build (dist/)
    runtime        node alone (no npm, no shell) + dist/ + the server files

The runtime gets no node_modules, no dev dependencies and no sources: the
server it runs must need nothing but Node itself.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class NodeStages:
    """The stages of one Node service; every method returns a lazy container."""

    src: dagger.Directory
    settings: NodeConfig
    builder_image: str
    runtime_image: str
    ca_bundle: dagger.File | None = None

    def dependencies(self) -> dagger.Container:
        """``npm ci`` from the lockfile alone, so the layer changes only with it."""
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

    def dev(self) -> dagger.Container:
        """Dependencies and the whole context: where lint, type checks and unit tests run."""
        return self.dependencies().with_directory(SRC, self.src, exclude=["node_modules"])

    def build(self) -> dagger.Container:
        """The production build."""
        return self.dev().with_exec(list(self.settings.build))

    def runtime(self) -> dagger.Container:
        """Node alone, the built assets and the server files; a non-root numeric user."""
        return (
            dag.container()
            .from_(self.runtime_image)
            .with_directory(f"{APP}/{self.settings.dist}", self.build().directory(f"{SRC}/{self.settings.dist}"))
            .with_directory(APP, self.src, include=list(self.settings.runtime_files))
            .with_env_variable("NODE_ENV", "production")
            .with_env_variable("PATH", "/nodejs/bin:/usr/local/bin:/usr/bin:/bin")
            .with_workdir(APP)
            .with_user(f"{RUNTIME_UID}:{RUNTIME_UID}")
        )
