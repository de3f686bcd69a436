"""Publishing a release: every image copied by digest to the release registry, then — and only then — tags.

A release never builds. It promotes the images that ``ci`` built and checked
for exactly these inputs: each is copied to the release registry with its
release metadata (OCI labels on the config, annotations on the manifest; the
layers are untouched), pushed *by digest*, so no tag anyone pulls has moved
yet. Only when every image of the release is there do the tags move. A failure
part-way — a registry error, a killed run — leaves every existing tag where
it was, and the next run finds the digests already there.

Digests are computed before anything is pushed, so ``--dry-run`` prints
exactly what a real run would write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cargohold.build import Provenance
from cargohold.config import Config
from cargohold.errors import CargoholdError, ConfigError, RegistryError
from cargohold.interrupts import deferred
from cargohold.plan import Plan
from cargohold.reference import Reference
from cargohold.registry import OCI_MANIFEST, Credentials, Registry, sha256_digest
from cargohold.sbom import EMPTY, artifact_manifest, component_count, fallback_tag
from cargohold.stage_cache import CacheEntry
from cargohold.tags import TagRequest, Version, release_tags

log = logging.getLogger(__name__)

OCI: Final = "org.opencontainers.image"


@dataclass(frozen=True)
class ReleaseImage:
    """One image of a release, prepared: its new config and manifest, their digests, its tags."""

    service: str
    variant: str
    source: Reference  # the built image, by digest, in the build registry
    target: str  # host/namespace/service in the release registry
    tags: tuple[str, ...]
    config: bytes
    manifest: bytes
    media_type: str
    sbom: bytes | None = None  # normalized CycloneDX, attached next to the image

    @property
    def digest(self) -> str:
        """The manifest digest the release registry will hold."""
        return sha256_digest(self.manifest)

    @property
    def sbom_manifest(self) -> bytes | None:
        """The OCI artifact manifest that carries the SBOM (its subject is this image)."""
        return artifact_manifest(self.sbom, self.manifest, self.media_type) if self.sbom is not None else None

    def lines(self) -> list[str]:
        """What this image writes: the digest, each tag, and the SBOM."""
        lines = [f"{self.target}@{self.digest}  (from {self.source})", *(f"  tag {self.target}:{t}" for t in self.tags)]
        if self.sbom is not None and (art := self.sbom_manifest) is not None:
            count = component_count(self.sbom)
            lines.append(
                f"  sbom {self.target}@{sha256_digest(art)} ({count} components, tag {fallback_tag(self.digest)})"
            )
        return lines


def release_metadata(
    version: str | None, revision: str, created: str, source_url: str, licenses: str
) -> dict[str, str]:
    """The OCI labels and annotations every image of the release carries (pure)."""
    metadata = {f"{OCI}.revision": revision, f"{OCI}.created": created}
    if version is not None:
        metadata[f"{OCI}.version"] = str(Version.parse(version))
    if source_url:
        metadata[f"{OCI}.source"] = source_url
    if licenses:
        metadata[f"{OCI}.licenses"] = licenses
    return metadata


def with_metadata(
    manifest: Mapping[str, Any], config: Mapping[str, Any], metadata: Mapping[str, str]
) -> tuple[bytes, bytes]:
    """The config with the labels added, and the manifest pointing at it with the annotations (pure)."""
    new_config = json.loads(json.dumps(config))
    runtime = new_config.setdefault("config", {})
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **metadata}
    config_bytes = json.dumps(new_config, sort_keys=True, separators=(",", ":")).encode()
    new_manifest = json.loads(json.dumps(manifest))
    new_manifest["config"] = {
        **new_manifest["config"],
        "digest": sha256_digest(config_bytes),
        "size": len(config_bytes),
    }
    new_manifest["annotations"] = {**(new_manifest.get("annotations") or {}), **metadata}
    return config_bytes, json.dumps(new_manifest, sort_keys=True, separators=(",", ":")).encode()


def prepare(source_registry: Registry, source: Reference, metadata: Mapping[str, str]) -> tuple[bytes, bytes, str]:
    """Read the built image and give it the release metadata: (config, manifest, media type)."""
    manifest = json.loads(source_registry.get_manifest(source.repository, str(source.digest)))
    if "layers" not in manifest:
        msg = f"{source} is an index, not one image"
        raise CargoholdError(msg, "publish the platform image; multi-platform releases are not supported yet")
    config = json.loads(source_registry.get_blob(source.repository, manifest["config"]["digest"]))
    config_bytes, manifest_bytes = with_metadata(manifest, config, metadata)
    return config_bytes, manifest_bytes, manifest.get("mediaType", OCI_MANIFEST)


def check_request(config: Config, version: str | None, branch: str | None, variants: Sequence[str]) -> None:
    """Refuse a release that cannot be right, before any registry is asked (pure).

    That is: neither a version nor a branch, a malformed version, a variant no service has.
    """
    if version is None and not branch:
        raise ConfigError(["give --version for a release, or --branch for a branch build"], "command line")
    if version is not None:
        Version.parse(version)
    known = sorted({v for name in config.services for v in config.service(name).variants})
    if unknown := sorted(set(variants) - set(known)):
        msg = f"--variant {', '.join(unknown)}: no service has it; the variants are {', '.join(known)}"
        raise ConfigError([msg], "command line")


def release_images(
    config: Config,
    planned: Plan,
    *,
    to: str,
    version: str | None,
    branch: str | None,
    provenance: Provenance,
    licenses: str,
    credentials: Credentials | None = None,
) -> list[ReleaseImage]:
    """Every image of the release, prepared: metadata added, digests computed, tags decided.

    ``credentials`` are the release registry's: its existing tags decide which moving tags may move,
    and a private repository shows them only to its owner.
    """
    if version is None and not branch:
        raise ConfigError(["give --version for a release, or --branch for a branch build"], "command line")
    if not provenance.revision:
        raise CargoholdError("publishing needs the commit being released", "run it in a git checkout")
    metadata = release_metadata(version, provenance.revision, provenance.committed, provenance.source_url, licenses)
    source_host = Reference.parse(f"{planned.registry}/x").registry
    source_registry, images = Registry(source_host), []
    for target, keys in planned.keys.items():
        entry = CacheEntry.for_image(planned.registry, target.service, target.variant, keys.image)
        source = Reference.parse(str(entry))
        digest = source_registry.manifest_digest(source.repository, str(source.tag))
        if digest is None:
            raise CargoholdError(f"{target.label}: no image at {entry}", "run './dev ci' first")
        built = source.with_digest(digest)
        config_bytes, manifest, media_type = prepare(source_registry, built, metadata)
        repo = f"{to}/{target.service}"
        target_registry = Registry(Reference.parse(f"{repo}:x").registry, timeout=30.0, credentials=credentials)
        released = existing_versions(target_registry, repo)
        svc = config.service(target.service)
        default = svc.variant(None)[0] == target.variant
        request = TagRequest(provenance.revision, target.variant, default, version, branch, released,
                             sole_variant=len(svc.variants) == 1)  # fmt: skip
        images.append(ReleaseImage(target.service, target.variant, built, repo, tuple(release_tags(request)),
                                   config_bytes, manifest, media_type))  # fmt: skip
    return images


def existing_versions(registry: Registry, repository: str) -> tuple[str, ...]:
    """The semver tags a repository already has (what decides which moving tags may move)."""
    versions = []
    for tag in registry.tags(Reference.parse(f"{repository}:x").repository):
        with contextlib.suppress(CargoholdError):
            if "-" not in tag or Version.parse(tag).pre:  # "1.4.0" or "1.5.0-rc.1", not "1.4.0-cuda"
                versions.append(str(Version.parse(tag)))
    return tuple(versions)


def push_by_digest(source_registry: Registry, target_registry: Registry, image: ReleaseImage) -> None:
    """Copy the layers the target lacks, then the config, then the manifest by its digest (no tag moves)."""
    target = Reference.parse(image.target + ":x").repository
    for layer in json.loads(image.manifest)["layers"]:
        digest = layer["digest"]
        if target_registry.blob_exists(target, digest):
            continue
        with _downloaded(source_registry, image.source.repository, digest) as path:
            target_registry.push_blob(target, digest, path)
    target_registry.push_blob(target, sha256_digest(image.config), image.config)
    stored = target_registry.put_manifest(target, image.digest, image.manifest, image.media_type)
    if stored != image.digest:  # pragma: no cover - put_manifest already refuses a rewritten manifest
        msg = f"{image.target}: the registry stored {stored}, not {image.digest}"
        raise RegistryError(msg, "the registry rewrote the manifest")
    if image.sbom is not None and (art := image.sbom_manifest) is not None:
        target_registry.push_blob(target, sha256_digest(EMPTY), EMPTY)
        target_registry.push_blob(target, sha256_digest(image.sbom), image.sbom)
        target_registry.put_manifest(target, sha256_digest(art), art, OCI_MANIFEST)
        # Named after the image's digest, not a release tag: nothing anyone pulls moves here.
        target_registry.put_manifest(target, fallback_tag(image.digest), art, OCI_MANIFEST)


def move_tags(target_registry: Registry, image: ReleaseImage) -> None:
    """Point every tag of the image at its digest (the manifest is already there)."""
    target = Reference.parse(image.target + ":x").repository
    for tag in image.tags:
        target_registry.put_manifest(target, tag, image.manifest, image.media_type)


def publish(source_registry: Registry, target_registry: Registry, images: Sequence[ReleaseImage]) -> None:
    """All images by digest first; the tags only when every one of them is there."""
    for image in images:
        log.info("publish: %s@%s", image.target, image.digest)
        push_by_digest(source_registry, target_registry, image)
    with deferred("moving the tags"):  # all of them or, when a registry fails, an error: never cut by a signal
        for image in images:
            move_tags(target_registry, image)
            log.info("publish: %s now tagged %s", image.target, ", ".join(image.tags))


@contextlib.contextmanager
def _downloaded(registry: Registry, repository: str, digest: str) -> Iterator[Path]:
    """A blob on local disk (checked against its digest), so a retried upload can read it again."""
    with tempfile.TemporaryDirectory(prefix="cargohold-blob-") as tmp:
        path = Path(tmp) / "blob"
        with registry.open_blob(repository, digest) as stream, path.open("wb") as out:
            while chunk := stream.read(8 * 1024 * 1024):
                out.write(chunk)
        yield path
