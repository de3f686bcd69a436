"""A copy of the repository to change freely, and the environment of a runner that builds it.

Shared by the cache tests and ``bench/fresh_runner.py``: both drive the real
command line against a copy, in a registry namespace of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cargohold.local_registry import local_registry_address

if TYPE_CHECKING:
    from tests.integration.testhost import TestHost

ROOT: Final = Path(__file__).resolve().parents[2]
WHEELS: Final = ROOT.parent / "shared" / "wheels"
_JUNK: Final = shutil.ignore_patterns("node_modules", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "dist")


def copy_repo(dst: Path) -> Path:
    """cargohold.toml, the services and the integration suite, without local junk."""
    dst.mkdir(parents=True)
    shutil.copy2(ROOT / "cargohold.toml", dst / "cargohold.toml")
    for folder in ("services", "integration"):
        shutil.copytree(ROOT / folder, dst / folder, ignore=_JUNK)
    return dst


def runner_env(registry: str, **extra: str) -> dict[str, str]:
    """A clean environment (none of this process's engine or cargohold settings) that builds into ``registry``.

    Torch for the backend comes from the shared wheelhouse (an index override), its dependencies from PyPI, and the
    base images are the local Debian-built ones.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_EXPERIMENTAL_DAGGER", "CARGOHOLD_"))}
    pypi = "https://pypi.org/simple"  # torch's own dependencies (pinned beside it in torch.txt)
    overrides = f'services.backend.variants.cpu = {{ find-links = "{WHEELS}", index-url = "{pypi}" }}'
    env |= {"CARGOHOLD_REGISTRY": registry, "CARGOHOLD_BASE_IMAGES": "local", "CARGOHOLD_OVERRIDES": overrides}
    return env | extra


def on_host(host: TestHost, namespace: str, state: Path, network: str, **extra: str) -> dict[str, str]:
    """``runner_env`` for a runner on a second test host: its own engine state and network, the shared registry.

    ``namespace`` is as the main host names it (127.0.0.1:5000/…); the runner reaches the same
    registry at the host's relay address.
    """
    return runner_env(
        namespace.replace(local_registry_address(), host.registry),
        CARGOHOLD_CACHE_DIR=str(state),
        CARGOHOLD_LOCAL_REGISTRY=host.registry,
        CARGOHOLD_ENGINE_NETNS=host.netns,
        CARGOHOLD_ENGINE_CONFIG=str(host.engine_config),
        CARGOHOLD_ENGINE_NETWORK=network,
        CARGOHOLD_PLAIN_HTTP_REGISTRIES=host.registry,
        **extra,
    )


def cli_argv(config: Path, *args: str) -> list[str]:
    """``python pipelines.py --config <config> <args>``: the real command line."""
    return [sys.executable, str(ROOT / "pipelines.py"), "--config", str(config), *args]


def cli(
    config: Path, env: dict[str, str], *args: str, timeout: float = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess, to its end (in ``cwd``: where relative report paths land)."""
    return subprocess.run(
        cli_argv(config, *args), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def cache_outcomes(report: Path) -> dict[tuple[str, str], str]:
    """(service, stage) → outcome, from a ``--cache-report`` JSON file."""
    return {(r["service"], r["stage"]): r["outcome"] for r in json.loads(report.read_text())}


def new_report(folder: Path, stem: str = "cache-report") -> Path:
    """A fresh file name for a report."""
    return folder / f"{stem}-{uuid.uuid4().hex[:6]}.json"
