"""Pruning cache tags on the real local registry (Debian's docker-registry, deletes enabled).

Each test pushes tiny fake cache images of its own under a namespace no other
run uses, then prunes it and reads back what the registry still holds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.layer_listings import TarEntry, artifact, listing_tag
from cargohold.local_registry import local_registry_address
from cargohold.registry import OCI_INDEX, OCI_MANIFEST, Registry, sha256_digest
from cargohold.retention import CREATED_LABEL, list_cache_entries, prune_cache
from tests.integration.oci_images import one_file_image, push_image

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RUN = f"retention-test-{secrets.token_hex(4)}"  # one namespace per run: nothing else prunes it


@pytest.fixture
def registry(bootstrapped: BootstrapReport) -> Registry:
    return Registry(local_registry_address())


@pytest.fixture
def namespace(registry: Registry, request: pytest.FixtureRequest) -> Iterator[str]:
    """``retention-test-<run>/<test>``: this test's own corner of the registry, emptied afterwards.

    The registry API cannot remove a repository, so the emptied ones stay in its catalog.
    """
    name = f"{RUN}/{request.node.name.removeprefix('test_').replace('_', '-')[:40].rstrip('-')}"
    yield name
    # Both rules: layer listings are never counted, only aged (and everything here is older than the far future).
    far_future = NOW + timedelta(days=36500)
    prune_cache(registry, name, older_than=timedelta(0), keep_newest=0, dry_run=False, now=far_future)


def push(registry: Registry, repository: str, tag: str, days_old: float | None, arch: str = "amd64") -> str:
    created = None if days_old is None else NOW - timedelta(days=days_old)
    labels = {CREATED_LABEL: created.strftime("%Y-%m-%dT%H:%M:%SZ")} if created else {}
    image = one_file_image("stage/output.txt", f"{tag} {arch}\n".encode(), labels=labels, arch=arch)
    return push_image(registry, repository, tag, image)


def test_catalog_and_tags_follow_the_pages(registry: Registry, namespace: str) -> None:
    repos = [f"{namespace}/cache/svc/{variant}" for variant in ("cpu", "cuda", "rocm")]
    for repo in repos:
        push(registry, repo, "deps-1", 1)
        push(registry, repo, "heavy-1", 2)
    listed = registry.catalog(page_size=2)
    assert [r for r in listed if r.startswith(f"{namespace}/")] == repos
    assert listed == sorted(listed)
    assert len(listed) > 2, "wanted every page, got only the first"
    assert registry.tags(repos[0], page_size=1) == ["deps-1", "heavy-1"]
    assert registry.tags(f"{namespace}/cache/nothing-here") == []


def test_keep_newest_deletes_the_older_images_per_repository(registry: Registry, namespace: str) -> None:
    cpu, cuda, final = f"{namespace}/cache/svc/cpu", f"{namespace}/cache/svc/cuda", f"{namespace}/svc"
    digests = {tag: push(registry, cpu, tag, days) for tag, days in [("d-1", 1), ("d-2", 2), ("d-3", 3), ("d-4", 4)]}
    old_manifest = registry.get_manifest(cpu, "d-4")
    registry.put_manifest(cpu, "h-4", old_manifest, OCI_MANIFEST)  # a second tag on the oldest image
    cuda_digests = [push(registry, cuda, "d-9", 9), push(registry, cuda, "d-8", 8)]
    push(registry, final, "latest", 50)  # not a cache repository: never pruned

    report = prune_cache(
        registry, f"{registry.host}/{namespace}", older_than=None, keep_newest=2, dry_run=False, now=NOW
    )

    assert [(e.repository, e.tag) for e in report.deleted] == [(cpu, "d-4"), (cpu, "h-4"), (cpu, "d-3")]
    assert report.kept == 4
    assert report.images == 2
    assert registry.tags(cpu) == ["d-1", "d-2"], "wanted the two newest kept, both tags of the oldest image gone"
    assert registry.manifest_digest(cpu, digests["d-4"]) is None
    assert registry.manifest_digest(cpu, digests["d-3"]) is None
    assert registry.manifest_digest(cpu, "d-1") == digests["d-1"]
    assert [registry.manifest_digest(cuda, t) for t in ("d-9", "d-8")] == cuda_digests
    assert registry.tags(final) == ["latest"]
    registry.delete_manifest(final, registry.manifest_digest(final, "latest") or "")  # the fixture empties cache/ only


def test_older_than_deletes_old_and_undated_entries(registry: Registry, namespace: str) -> None:
    repo = f"{namespace}/cache/svc/cpu"
    for tag, days in [("fresh", 1), ("week", 6.9), ("stale", 10), ("ancient", 20), ("undated", None)]:
        push(registry, repo, tag, days)

    report = prune_cache(registry, namespace, older_than=timedelta(days=7), keep_newest=None, dry_run=False, now=NOW)

    assert [e.tag for e in report.deleted] == ["undated", "ancient", "stale"]
    assert registry.tags(repo) == ["fresh", "week"]
    assert report.lines()[0] == f"cache {namespace}: deleted 3 tags (3 images), kept 2"


def test_a_dry_run_deletes_nothing(registry: Registry, namespace: str) -> None:
    repo = f"{namespace}/cache/svc/cpu"
    digests = [push(registry, repo, f"deps-{days}", days) for days in (1, 2, 3)]

    report = prune_cache(registry, namespace, older_than=timedelta(days=1.5), keep_newest=1, dry_run=True, now=NOW)

    assert [e.tag for e in report.deleted] == ["deps-3", "deps-2"]
    assert report.lines()[0].startswith(f"cache {namespace}: would delete 2 tags")
    assert registry.tags(repo) == ["deps-1", "deps-2", "deps-3"]
    assert [registry.manifest_digest(repo, f"deps-{days}") for days in (1, 2, 3)] == digests


def test_the_namespace_prefix_stops_at_a_folder_boundary(registry: Registry, namespace: str) -> None:
    mine, neighbour = f"{namespace}/a/cache/svc/cpu", f"{namespace}/ab/cache/svc/cpu"
    push(registry, mine, "deps-1", 30)
    push(registry, neighbour, "deps-1", 30)

    report = prune_cache(registry, f"{namespace}/a", older_than=timedelta(0), keep_newest=None, dry_run=False)

    assert [(e.repository, e.tag) for e in report.deleted] == [(mine, "deps-1")]
    assert registry.tags(neighbour) == ["deps-1"]


def test_an_index_is_read_through_its_linux_amd64_image(registry: Registry, namespace: str) -> None:
    repo = f"{namespace}/cache/svc/cpu"
    amd64 = push(registry, repo, "amd64-only", 3, arch="amd64")
    arm64 = push(registry, repo, "arm64-only", 9, arch="arm64")
    entries = [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(registry.get_manifest(repo, d)), "platform": p}
        for d, p in [
            (arm64, {"os": "linux", "architecture": "arm64"}),
            (amd64, {"os": "linux", "architecture": "amd64"}),
        ]
    ]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    registry.put_manifest(repo, "multi", index, OCI_INDEX)

    assert registry.image_config(repo, "multi")["architecture"] == "amd64"
    created = {e.tag: e.created for e in list_cache_entries(registry, namespace)}
    assert created["multi"] == NOW - timedelta(days=3), f"wanted the amd64 image's date, got {created}"


def test_deleting_a_manifest_already_gone_is_not_an_error(registry: Registry, namespace: str) -> None:
    repo = f"{namespace}/cache/svc/cpu"
    digest = push(registry, repo, "deps-1", 1)
    registry.delete_manifest(repo, digest)
    registry.delete_manifest(repo, digest)
    assert registry.manifest_digest(repo, digest) is None
    assert registry.tags(repo) == []


def push_listing(registry: Registry, repository: str, n: int, days_old: float) -> str:
    """A layer listing artifact as ``layer_listings`` stores it, dated ``days_old`` before NOW; its tag."""
    layer = sha256_digest(f"{RUN} layer {n}".encode())
    stored = artifact(
        layer, (TarEntry(f"/layer-{n}", n),), (NOW - timedelta(days=days_old)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    tag = listing_tag(layer)
    assert tag is not None
    registry.push_blob(repository, sha256_digest(stored.rows), stored.rows)
    registry.push_blob(repository, sha256_digest(stored.config), stored.config)
    registry.put_manifest(repository, tag, stored.manifest, OCI_MANIFEST)
    return tag


def test_layer_listings_are_aged_but_never_counted(registry: Registry, namespace: str) -> None:
    stages, listings = f"{namespace}/cache/svc/cpu", f"{namespace}/cache/layer-listings"
    for tag, days in [("deps-1", 1), ("deps-2", 2), ("deps-3", 3)]:
        push(registry, stages, tag, days)
    ages = {push_listing(registry, listings, n, days): days for n, days in enumerate([1, 2, 3, 30])}
    dated = {e.tag: e.created for e in list_cache_entries(registry, namespace) if e.repository == listings}
    assert dated == {tag: NOW - timedelta(days=days) for tag, days in ages.items()}, "wanted each listing's date"

    counted = prune_cache(registry, namespace, older_than=None, keep_newest=1, dry_run=False, now=NOW)

    assert [(e.repository, e.tag) for e in counted.deleted] == [(stages, "deps-3"), (stages, "deps-2")]
    assert registry.tags(stages) == ["deps-1"]
    assert registry.tags(listings) == sorted(ages), "wanted every listing kept by --keep-newest"

    aged = prune_cache(registry, namespace, older_than=timedelta(days=7), keep_newest=1, dry_run=False, now=NOW)

    old = [tag for tag, days in ages.items() if days > 7]
    assert [(e.repository, e.tag) for e in aged.deleted] == [(listings, tag) for tag in old]
    assert registry.tags(listings) == sorted(set(ages) - set(old)), "wanted the 30-day-old listing gone"
