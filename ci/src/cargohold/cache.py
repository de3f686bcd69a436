"""Cache policy, in one place: every cache volume cargohold mounts is named here.

A cache volume is only an accelerator: every pipeline is correct with all of
them empty. Names carry the ``cargohold-`` prefix so they never collide with
another module's volumes on a shared engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import dagger
from dagger import dag

PREFIX: Final = "cargohold"
PIP_CACHE_PATH: Final = "/root/.cache/pip"


def volume(name: str) -> dagger.CacheVolume:
    """The cache volume ``cargohold-<name>``."""
    return dag.cache_volume(f"{PREFIX}-{name}")


def pip_cache() -> Callable[[dagger.Container], dagger.Container]:
    """Pip's wheel cache (built wheels survive; the proxy here defeats its HTTP cache)."""

    def apply(ctr: dagger.Container) -> dagger.Container:
        return ctr.with_mounted_cache(PIP_CACHE_PATH, volume("pip"))

    return apply


NPM_CACHE_PATH: Final = "/root/.npm"


def npm_cache() -> Callable[[dagger.Container], dagger.Container]:
    """The npm content cache (tarballs); ``npm ci`` still installs exactly the lockfile."""

    def apply(ctr: dagger.Container) -> dagger.Container:
        return ctr.with_mounted_cache(NPM_CACHE_PATH, volume("npm"))

    return apply
