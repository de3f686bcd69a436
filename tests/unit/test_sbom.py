"""SBOM normalization and its OCI artifact (pure)."""

from __future__ import annotations

import json

from cargohold.registry import sha256_digest
from cargohold.sbom import artifact_manifest, component_count, fallback_tag, normalize

BOM = {"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "urn:uuid:random", "components": [{"name": "a"}]}


def test_normalize_is_the_same_for_the_same_release() -> None:
    a = normalize(BOM, "ghcr.io/acme/backend", "1.4.0", "2026-11-23T12:00:00Z")
    b = normalize({**BOM, "serialNumber": "urn:uuid:other"}, "ghcr.io/acme/backend", "1.4.0", "2026-11-23T12:00:00Z")
    assert a == b
    doc = json.loads(a)
    assert "serialNumber" not in doc
    assert doc["metadata"]["component"] == {"type": "container", "name": "ghcr.io/acme/backend", "version": "1.4.0"}
    assert component_count(a) == 1


def test_the_artifact_points_at_its_image() -> None:
    sbom, image = b'{"bomFormat":"CycloneDX"}', b'{"schemaVersion":2}'
    artifact = json.loads(artifact_manifest(sbom, image, "application/vnd.oci.image.manifest.v1+json"))
    assert artifact["subject"]["digest"] == sha256_digest(image)
    assert artifact["layers"][0]["digest"] == sha256_digest(sbom)
    assert fallback_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64 + ".sbom"
