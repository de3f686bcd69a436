"""Tiny OCI images made by hand, pushed to the real registry: one layer holding one file."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping

from cargohold.registry import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Registry, sha256_digest


def one_file_image(
    path: str, data: bytes, *, labels: Mapping[str, str] | None = None, arch: str = "amd64"
) -> tuple[bytes, bytes, bytes]:
    """(layer, config, manifest) of an image whose one gzip layer holds ``path`` (reproducible bytes)."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(tar.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": dict(labels or {})},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar.getvalue())]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)}],
        }
    ).encode()
    return layer, config, manifest


def push_image(registry: Registry, repository: str, tag: str, image: tuple[bytes, bytes, bytes]) -> str:
    """Push ``image``'s blobs and manifest under ``tag``; the manifest's digest."""
    layer, config, manifest = image
    registry.push_blob(repository, sha256_digest(layer), layer)
    registry.push_blob(repository, sha256_digest(config), config)
    return registry.put_manifest(repository, tag, manifest, OCI_MANIFEST)
