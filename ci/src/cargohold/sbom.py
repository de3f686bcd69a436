"""SBOMs of released images (CycloneDX 1.5), attached to each image as an OCI artifact.

- Python images: every distribution the image's own interpreter sees (the venv and the heavy
  folder), read inside the image itself, so the SBOM is what runs, not what a lockfile says.
- Node images: ``npm sbom`` over the service's lockfile, production dependencies only (the
  runtime image has no node_modules; what it serves came from these).

An SBOM is pushed next to its image as an OCI artifact whose ``subject`` is the image (the
referrers model) and is also tagged ``sha256-<hex>.sbom``, the fallback tag scheme for
registries without the referrers API. It is normalized (no random serial number, the commit's
time as timestamp), so the same release always gives the same SBOM digest and ``--dry-run``
can print it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import dagger
from dagger import dag

from cargohold.registry import OCI_MANIFEST, sha256_digest

CYCLONEDX: Final = "application/vnd.cyclonedx+json"
EMPTY_CONFIG: Final = "application/vnd.oci.empty.v1+json"
EMPTY: Final = b"{}"
PYTHON_SBOM: Final = """
import importlib.metadata as md, json, sys
components = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    if not name:
        continue
    purl = f"pkg:pypi/{name.lower()}@{dist.version}"
    entry = {"type": "library", "name": name, "version": dist.version, "purl": purl}
    licence = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
    if licence and len(licence) < 80 and "\\n" not in licence:
        entry["licenses"] = [{"license": {"name": licence}}]
    components[(name.lower(), dist.version)] = entry
bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
       "components": [components[k] for k in sorted(components)]}
print(json.dumps(bom))
"""


async def python_sbom(image: str) -> dict[str, Any]:
    """The distributions the image's interpreter sees, as CycloneDX."""
    out = await dag.container().from_(image).with_exec(["python", "-c", PYTHON_SBOM]).stdout()
    return dict(json.loads(out))


async def node_sbom(node_image: str, lockfiles: dagger.Directory) -> dict[str, Any]:
    """``npm sbom`` of the production dependencies, from the lockfile alone."""
    out = await (
        dag.container()
        .from_(node_image)
        .with_directory("/src", lockfiles)
        .with_workdir("/src")
        .with_exec(["npm", "sbom", "--sbom-format", "cyclonedx", "--omit", "dev", "--package-lock-only"])
        .stdout()
    )
    return dict(json.loads(out))


async def release_sbom(
    *, python: bool, image: str, node_image: str, lockfiles: dagger.Directory, name: str, version: str, committed: str
) -> bytes:
    """The normalized SBOM of one released image: read from the image (Python) or the lockfile (Node)."""
    bom = await python_sbom(image) if python else await node_sbom(node_image, lockfiles)
    return normalize(bom, name, version, committed)


def normalize(bom: Mapping[str, Any], name: str, version: str, committed: str) -> bytes:
    """The same bytes for the same release: no random serial number, the commit's time (pure)."""
    doc = {k: v for k, v in bom.items() if k != "serialNumber"}
    doc["metadata"] = {
        **(doc.get("metadata") or {}),
        "timestamp": committed,
        "component": {"type": "container", "name": name, "version": version},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def artifact_manifest(sbom: bytes, subject: bytes, subject_media_type: str) -> bytes:
    """An OCI artifact manifest carrying the SBOM, pointing at the image it describes (pure)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": CYCLONEDX,
            "config": {"mediaType": EMPTY_CONFIG, "digest": sha256_digest(EMPTY), "size": len(EMPTY)},
            "layers": [{"mediaType": CYCLONEDX, "digest": sha256_digest(sbom), "size": len(sbom)}],
            "subject": {"mediaType": subject_media_type, "digest": sha256_digest(subject), "size": len(subject)},
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def fallback_tag(image_digest: str) -> str:
    """``sha256-<hex>.sbom``: where registries without the referrers API keep it."""
    return image_digest.replace(":", "-") + ".sbom"


def component_count(sbom: bytes) -> int:
    """How many components an SBOM lists."""
    return len(json.loads(sbom).get("components") or [])
