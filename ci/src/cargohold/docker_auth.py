"""Registry logins from Docker's config file: the one ``docker login`` writes and the Dagger CLI reads.

One login then serves both sides of a run: the engine pushes with it (the
Dagger session hands the client's Docker credentials to the engine), and
cargohold's own registry client reads with it (plan lookups, image facts), as
a CI job on a private GHCR or GitLab registry needs. Only inline ``auths``
entries are read; credential helpers (``credsStore``, ``credHelpers``) are not
run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path


def docker_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    if folder := environ.get("DOCKER_CONFIG"):
        return Path(folder) / "config.json"
    return Path(environ.get("HOME", "/nonexistent")) / ".docker" / "config.json"


def docker_login(host: str, environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """The user and password stored for ``host`` (``ghcr.io``, ``registry.example.com:5000``), or None."""
    try:
        auths = json.loads(docker_config_path(environ).read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/"):
        if isinstance(entry := auths.get(key), dict):
            return _pair(entry)
    return None


def _pair(entry: Mapping[str, object]) -> tuple[str, str] | None:
    if isinstance(auth := entry.get("auth"), str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None
    name, secret = entry.get("username"), entry.get("password")
    return (name, secret) if isinstance(name, str) and isinstance(secret, str) else None
