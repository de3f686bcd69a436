"""A single-layer OCI image from a root filesystem tarball, pushed to a registry.

Used for base images made from Debian packages (no Docker, no engine needed).
The layer is gzip-compressed with a fixed mtime and the config has a fixed
creation time, so the same tarball always gives the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cargohold.registry import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Registry, sha256_digest

EPOCH: Final = "1970-01-01T00:00:00Z"
_CHUNK: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class ImageConfig:
    """The runtime settings of an image (the ``config`` part of an OCI image config)."""

    env: Mapping[str, str] = field(default_factory=dict)
    cmd: Sequence[str] = ()
    entrypoint: Sequence[str] = ()
    user: str = ""
    workdir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: Sequence[str] = ()

    def as_json(self) -> dict[str, object]:
        """The OCI ``config`` object; empty settings are left out."""
        config: dict[str, object] = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        optional: dict[str, object] = {
            "Cmd": list(self.cmd),
            "Entrypoint": list(self.entrypoint),
            "User": self.user,
            "WorkingDir": self.workdir,
            "Labels": dict(self.labels),
            "ExposedPorts": {p: {} for p in self.exposed_ports},
        }
        config.update({k: v for k, v in optional.items() if v})
        return config


@dataclass(frozen=True)
class Layer:
    """A compressed layer file with its two digests."""

    path: Path
    digest: str  # of the gzip stream, as stored in the registry
    diff_id: str  # of the uncompressed tar, as listed in the image config
    size: int


def compress_layer(rootfs_tar: Path, out: Path) -> Layer:
    """Gzip ``rootfs_tar`` into ``out``, hashing both sides in one pass."""
    uncompressed = hashlib.sha256()
    with rootfs_tar.open("rb") as src, out.open("wb") as raw:
        hashing = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=6, mtime=0) as gz:
            while chunk := src.read(_CHUNK):
                uncompressed.update(chunk)
                gz.write(chunk)
    return Layer(out, "sha256:" + hashing.sha.hexdigest(), "sha256:" + uncompressed.hexdigest(), hashing.size)


def push_image(
    registry: Registry,
    repository: str,
    tag: str,
    layer: Layer,
    *,
    config: ImageConfig,
    history: str,
    annotations: Mapping[str, str],
) -> str:
    """Push layer, config and manifest; the manifest digest."""
    image_config = json.dumps(
        {
            "created": EPOCH,
            "architecture": "amd64",
            "os": "linux",
            "config": config.as_json(),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": EPOCH, "created_by": history}],
        },
        sort_keys=True,
    ).encode()
    config_digest = sha256_digest(image_config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(image_config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
            "annotations": dict(annotations),
        },
        sort_keys=True,
    ).encode()
    registry.push_blob(repository, layer.digest, layer.path)
    registry.push_blob(repository, config_digest, image_config)
    return registry.put_manifest(repository, tag, manifest, OCI_MANIFEST)


class _HashingWriter:
    """A file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: object) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)  # type: ignore[attr-defined,no-any-return]

    def flush(self) -> None:
        self.raw.flush()  # type: ignore[attr-defined]
