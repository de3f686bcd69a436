"""Bringing a machine to the point where pipelines run: engine, registry, base images.

Idempotent and fast when everything is there: it reuses a running engine, a
registry that answers, and base images whose keyed tags exist, and says so.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from dataclasses import dataclass
from typing import Final

from cargohold.base_images import BaseImages, ensure_base_images, find_base_images, local_image_overrides
from cargohold.engine import Engine, EngineKind, resolve
from cargohold.errors import ConfigError, EngineError
from cargohold.local_registry import RegistryStatus, ensure_local_registry, local_registry_address

log = logging.getLogger(__name__)

BASE_IMAGES_VAR: Final = "CARGOHOLD_BASE_IMAGES"


class BaseImageSource(enum.Enum):
    """Where a run's base images come from."""

    AUTO = "auto"  # local on a native engine (Docker-less hosts), upstream otherwise
    LOCAL = "local"  # made from Debian packages and pushed to the local registry
    UPSTREAM = "upstream"  # the pinned references in cargohold.toml


def base_image_source(engine: Engine | None, environ: dict[str, str] | None = None) -> BaseImageSource:
    """The source to use: ``$CARGOHOLD_BASE_IMAGES``, else the engine's default (upstream without one)."""
    value = (environ if environ is not None else os.environ).get(BASE_IMAGES_VAR, "auto")
    try:
        source = BaseImageSource(value)
    except ValueError:
        choices = "|".join(s.value for s in BaseImageSource)
        raise ConfigError([f"{BASE_IMAGES_VAR}={value}: use one of {choices}"], "environment") from None
    if source is BaseImageSource.AUTO:
        native = engine is not None and engine.kind is EngineKind.NATIVE
        return BaseImageSource.LOCAL if native else BaseImageSource.UPSTREAM
    return source


@dataclass(frozen=True)
class BootstrapReport:
    """What the bootstrap found, started and made."""

    engine: Engine
    registry: RegistryStatus
    base_images: BaseImages | None
    seconds: float

    def lines(self) -> list[str]:
        """A person's summary: one line per part, saying reused or made."""
        engine = "reused" if self.engine.reused else f"started in {self.engine.start_seconds:.1f} s"
        registry = f"started in {self.registry.seconds:.1f} s" if self.registry.started else "reused"
        lines = [f"engine: {self.engine.description} — {engine}", f"registry: {self.registry.address} — {registry}"]
        if self.base_images is None:
            lines.append("base images: upstream references from cargohold.toml")
        else:
            for r in self.base_images.results:
                how = f"built in {r.seconds:.0f} s ({r.compressed_bytes / 1e6:.0f} MB)" if r.built else "reused"
                lines.append(f"base image {r.name}: {r.reference} — {how}")
        lines.append(f"bootstrap: {self.seconds:.1f} s")
        return lines


def use_local_base_images() -> None:
    """Point this process at the local base images that exist, without building any (for ``plan``)."""
    try:
        engine: Engine | None = resolve(start=False)
    except EngineError:
        engine = None  # a plan needs no engine; with none, only an explicit CARGOHOLD_BASE_IMAGES=local applies
    if base_image_source(engine) is not BaseImageSource.LOCAL:
        return
    for name, ref in local_image_overrides(find_base_images(local_registry_address())).items():
        os.environ.setdefault(name, ref)


def bootstrap() -> BootstrapReport:
    """Resolve the engine, bring up the local registry, and the base images when local."""
    began = time.monotonic()
    engine = resolve(start=True)
    engine.export()
    registry = ensure_local_registry()
    images = None
    if base_image_source(engine) is BaseImageSource.LOCAL:
        images = ensure_base_images(registry.address)
        # Point this run's configuration at them, by environment only, as the tests do.
        for name, ref in local_image_overrides(images.references()).items():
            os.environ.setdefault(name, ref)  # an explicit override still wins
    return BootstrapReport(engine, registry, images, time.monotonic() - began)


def ready_for_lookups(*, engine_required: bool = True) -> None:
    """The cheap first half of the bootstrap, before a command asks the registry anything.

    The local registry must answer, started if need be. With ``engine_required`` (the main
    command, ``ci``), an engine route must exist too: with none, exit 2 naming the options before a
    single lookup waits on a registry. ``build`` leaves it out, so a fresh runner without any engine
    can still reuse images that exist. The engine itself is not started: a run with nothing to do
    never needs it.
    """
    if engine_required:
        resolve(start=False)
    ensure_local_registry()
