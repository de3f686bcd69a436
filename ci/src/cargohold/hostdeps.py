"""Host packages cargohold needs at the edge, installed from Debian when missing.

The native engine wants runc, dnsmasq, CNI plugins and iptables; the local
registry wants Debian's docker-registry; base images want mmdebstrap. Each is
named here once with the file that proves it is installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from cargohold.errors import BootstrapError

log = logging.getLogger(__name__)

_apt_updated = False


def missing_packages(required: Mapping[str, str]) -> list[str]:
    """Debian packages whose proof file (an absolute path or a command name) is absent."""
    return sorted(
        {package for proof, package in required.items() if not _present(proof)},
    )


def ensure_packages(required: Mapping[str, str], purpose: str) -> list[str]:
    """Install what is missing with apt-get; the packages it installed."""
    missing = missing_packages(required)
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        msg = f"{purpose} needs the Debian packages {' '.join(missing)}"
        raise BootstrapError(msg, f"install them: apt-get install -y {' '.join(missing)}")
    log.info("installing %s for %s (apt-get)", " ".join(missing), purpose)
    if not _apt_updated:
        _apt_get("update", "-qq")
    _apt_get("install", "-y", "-qq", "--no-install-recommends", *missing)
    return missing


def ensure_link(target: Path, link: Path) -> None:
    """``link`` points to ``target`` (leaves an existing file alone)."""
    if link.exists() or link.is_symlink():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def _present(proof: str) -> bool:
    return Path(proof).exists() if proof.startswith("/") else shutil.which(proof) is not None


def _apt_get(*args: str) -> None:
    global _apt_updated  # noqa: PLW0603 - one 'apt-get update' per process is enough
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        ["apt-get", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        msg = f"apt-get {args[0]} failed: {tail}"
        raise BootstrapError(msg, "check the machine's Debian sources and network")
    if args[0] == "update":
        _apt_updated = True
