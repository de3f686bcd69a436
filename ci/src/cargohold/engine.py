"""Finding a Dagger engine, at the edge of the program.

In this order, saying which one it uses:

1. ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` is set: a remote or shared engine
   (``tcp://``, ``unix://``, ``kube-pod://``, ``container://``).
2. A native engine binary is on the machine (``CARGOHOLD_ENGINE_DIR``, or
   ``dagger-engine`` on PATH, or ``/opt/dagger/current/bin``, with ``dagger``
   and ``dagger-init`` beside it): cargohold starts it as a background service
   (see ``native_engine``). This is the route for Docker-less Linux hosts.
3. Docker answers: the official route, where the SDK provisions the matching
   CLI, which runs the engine in Docker.

Resolving writes the client environment into ``os.environ`` (for this process
and the SDK's CLI) and into ``<cache>/engine/client.env`` (for a shell or a test
run that wants the same engine).
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, MutableMapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from cargohold.errors import EngineError
from cargohold.paths import state_path

log = logging.getLogger(__name__)

ENGINE_VERSION: Final = "v0.21.8"
"""The engine version this release is pinned to (``dagger.json``'s engineVersion)."""

RUNNER_HOST_VAR: Final = "_EXPERIMENTAL_DAGGER_RUNNER_HOST"
CLI_BIN_VAR: Final = "_EXPERIMENTAL_DAGGER_CLI_BIN"
ENGINE_DIR_VAR: Final = "CARGOHOLD_ENGINE_DIR"
CONVENTIONAL_ENGINE_DIR: Final = Path("/opt/dagger/current/bin")
# Set beside the runner host when cargohold exported it for its own native
# engine, so resolving again does not mistake that engine for a remote one.
NATIVE_HOST_VAR: Final = "CARGOHOLD_NATIVE_RUNNER_HOST"

QUIET_CLIENT_ENV: Final = {
    "DO_NOT_TRACK": "1",
    "DAGGER_NO_NAG": "1",
    "DAGGER_NO_UPDATE_CHECK": "1",
}

NO_ENGINE_LINE: Final = (
    "no Dagger engine: set _EXPERIMENTAL_DAGGER_RUNNER_HOST to a running engine, "
    "or put a native engine on this machine (CARGOHOLD_ENGINE_DIR, dagger-engine on PATH, "
    "or /opt/dagger/current/bin), or install Docker and the dagger CLI (the official route)"
)


class EngineKind(enum.Enum):
    """How the engine is reached; printed in the integration summary line."""

    REMOTE = "remote"
    NATIVE = "native"
    DOCKER = "docker"


@dataclass(frozen=True)
class Engine:
    """A resolved engine and the client environment that reaches it."""

    kind: EngineKind
    description: str
    version: str = ""  # known before connecting only for a native engine
    runner_host: str | None = None
    cli_bin: str | None = None
    reused: bool = True
    start_seconds: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def client_env(self) -> dict[str, str]:
        """The variables the SDK and the ``dagger`` CLI read."""
        env = {**QUIET_CLIENT_ENV, **self.extra_env}
        if self.runner_host:
            env[RUNNER_HOST_VAR] = self.runner_host
        if self.kind is EngineKind.NATIVE and self.runner_host:
            env[NATIVE_HOST_VAR] = self.runner_host
        if self.cli_bin:
            env[CLI_BIN_VAR] = self.cli_bin
        return env

    def export(self, environ: MutableMapping[str, str] = os.environ) -> Path:
        """Put the client environment into ``environ`` (this process's) and the shared env file."""
        env = self.client_env()
        environ.update(env)
        env_file = state_path("engine", "client.env")
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in sorted(env.items())))
        return env_file


def native_engine_dir() -> Path | None:
    """The directory of a native engine on this machine, or None.

    ``CARGOHOLD_ENGINE_DIR=none`` turns the native route off (to use Docker on a
    machine that has both, or to see what a machine without an engine does).
    """
    explicit = os.environ.get(ENGINE_DIR_VAR)
    if explicit == "none":
        return None
    if explicit:
        for candidate in (Path(explicit), Path(explicit) / "bin"):
            if (candidate / "dagger-engine").is_file():
                return candidate
        msg = f"{ENGINE_DIR_VAR}={explicit} has no dagger-engine binary"
        raise EngineError(msg, "point it at the folder holding dagger-engine, dagger and dagger-init")
    if on_path := shutil.which("dagger-engine"):
        return Path(on_path).resolve().parent
    if (CONVENTIONAL_ENGINE_DIR / "dagger-engine").is_file():
        return CONVENTIONAL_ENGINE_DIR
    return None


def docker_answers() -> bool:
    """True when a Docker daemon answers (the official route can start an engine in it)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def resolve(*, start: bool = True) -> Engine:
    """Find an engine in the documented order; start a native one when ``start``."""
    host = os.environ.get(RUNNER_HOST_VAR)
    if host and host != os.environ.get(NATIVE_HOST_VAR):
        cli = os.environ.get(CLI_BIN_VAR) or shutil.which("dagger")
        return Engine(EngineKind.REMOTE, f"remote engine at {host}", runner_host=host, cli_bin=cli)
    if (engine_dir := native_engine_dir()) is not None:
        from cargohold.native_engine import NativeEngine  # noqa: PLC0415 - only this route needs it

        native = NativeEngine.at(engine_dir)
        return native.ensure_running() if start else native.describe()
    if docker_answers():
        cli = os.environ.get(CLI_BIN_VAR) or shutil.which("dagger")
        how = f"dagger CLI {cli}" if cli else "CLI provisioned by the SDK"
        return Engine(EngineKind.DOCKER, f"engine in Docker ({how})", cli_bin=cli)
    raise EngineError(NO_ENGINE_LINE, "see README.md, 'The engine'")


@asynccontextmanager
async def session(engine: Engine, log_output: TextIO | None = None) -> AsyncIterator[str]:
    """A Dagger session on ``engine``; yields the engine's version."""
    import dagger  # noqa: PLC0415 - the SDK only when a session opens: resolving an engine needs none

    engine.export()
    async with AsyncExitStack() as stack:
        try:
            config = dagger.Config(log_output=log_output, timeout=None)
            await stack.enter_async_context(dagger.connection(config))
            version = await dagger.dag.version()
        except (dagger.ProvisionError, dagger.ClientConnectionError) as e:
            msg = f"could not connect to the {engine.description}: {e}"
            raise EngineError(msg, "run 'python pipelines.py engine status'") from e
        yield version
