"""The local OCI registry: Debian's docker-registry (CNCF distribution) on loopback.

It is the default registry for local runs (cache tags, base images, smoke
images) and the stand-in for GHCR in tests: the same distribution API.
Storage lives under ``<cache>/registry`` so it survives between runs.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Final

from cargohold.daemon import Daemon, wait_until
from cargohold.errors import BootstrapError, CargoholdError
from cargohold.hostdeps import ensure_packages
from cargohold.paths import state_path
from cargohold.registry import Registry, is_loopback

log = logging.getLogger(__name__)

DEFAULT_ADDRESS: Final = "127.0.0.1:5000"
ADDRESS_VAR: Final = "CARGOHOLD_LOCAL_REGISTRY"

_CONFIG: Final = """\
version: 0.1
log:
  level: warn
  fields:
    service: cargohold-registry
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {address}
"""


@dataclass(frozen=True)
class RegistryStatus:
    """What ``ensure_local_registry`` found or did."""

    address: str
    started: bool
    seconds: float


def local_registry_address() -> str:
    """``$CARGOHOLD_LOCAL_REGISTRY`` or 127.0.0.1:5000."""
    return os.environ.get(ADDRESS_VAR, DEFAULT_ADDRESS)


def _daemon() -> Daemon:
    return Daemon(
        "local registry",
        state_path("registry", "registry.pid"),
        state_path("registry", "registry.log"),
        "docker-registry",
    )


def ensure_local_registry() -> RegistryStatus:
    """Reuse the registry answering at the address, or start Debian's docker-registry there."""
    address = local_registry_address()
    registry = Registry(address, timeout=2.0)
    began = time.monotonic()
    if registry.ping():
        log.info("registry: reusing the registry at %s", address)
        return RegistryStatus(address, started=False, seconds=time.monotonic() - began)
    if not is_loopback(address):
        msg = f"no registry answers at {address}, and cargohold only starts one on loopback"
        raise BootstrapError(msg, f"start it, or unset {ADDRESS_VAR}")
    ensure_packages({"/usr/bin/docker-registry": "docker-registry"}, "the local registry")
    config = state_path("registry", "config.yml")
    config.write_text(_CONFIG.format(root=state_path("registry", "data", "x").parent, address=address))
    daemon = _daemon()
    daemon.stop()
    daemon.start(["/usr/bin/docker-registry", "serve", str(config)])
    try:
        wait_until(registry.ping, 30.0, daemon)
    except CargoholdError as e:
        raise BootstrapError(str(e), e.hint) from e
    seconds = time.monotonic() - began
    log.info("registry: started docker-registry at %s in %.1f s (storage %s)", address, seconds, config.parent)
    return RegistryStatus(address, started=True, seconds=seconds)


def stop_local_registry() -> bool:
    """Stop the registry cargohold started; True when one was running."""
    return _daemon().stop()
