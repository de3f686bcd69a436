"""Where cargohold keeps its state on this machine.

Everything lives under one cache directory outside the repository, so a fresh
clone (a CI checkout) on the same machine reuses the engine state, the local
registry's storage and the base images of earlier runs, and deleting that one
directory is a full reset.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$CARGOHOLD_CACHE_DIR``, else ``$XDG_CACHE_HOME/cargohold``, else ``~/.cache/cargohold``."""
    if explicit := os.environ.get("CARGOHOLD_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cargohold"


def state_path(*parts: str) -> Path:
    """A path under the cache directory; its parent directory exists."""
    path = cache_dir().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
