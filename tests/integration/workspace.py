"""A copy of the repository to change freely, and the environment of a runner that builds it.

Shared by the cache tests and ``bench/fresh_runner.py``: both drive the real
command line against a copy, in a registry namespace of their own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

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

    Torch for the backend comes from the shared wheelhouse (an index override), and the
    base images are the local Debian-built ones.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_EXPERIMENTAL_DAGGER", "CARGOHOLD_"))}
    overrides = f'services.backend.variants.cpu = {{ find-links = "{WHEELS}", index-url = "" }}'
    env |= {"CARGOHOLD_REGISTRY": registry, "CARGOHOLD_BASE_IMAGES": "local", "CARGOHOLD_OVERRIDES": overrides}
    return env | extra
