"""Layer listings: the stored artifact's shape, its tag, reading it back, and the lookup order (no registry)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cargohold import layer_listings
from cargohold.image_checks import cache_namespace
from cargohold.layer_listings import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    LAYER_ANNOTATION,
    ROWS_MEDIA_TYPE,
    Layer,
    Listing,
    ListingStore,
    Origin,
    TarEntry,
    artifact,
    backfill,
    decode_rows,
    encode_rows,
    entry_namespace,
    first_found,
    gunzip_rows,
    is_listings_repository,
    layer_listing,
    listing_tag,
    read_disk,
    rows_blob,
    write_disk,
)
from cargohold.reference import Reference
from cargohold.registry import OCI_MANIFEST, Registry, sha256_digest
from cargohold.retention import parse_created
from cargohold.stage_cache import LABEL_CREATED

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
CREATED = "2026-11-23T12:00:00Z"
LISTING: Listing = (
    TarEntry("/opt/heavy", 0, "dir"),
    TarEntry("/opt/heavy/torch/lib/libtorch_cpu.so", 434_000_000),
    TarEntry("/opt/heavy/bin/torchrun", 0, "symlink"),
    TarEntry("/dev/null", 0, "other"),
)
# Nothing listens on port 9 (discard): a test that reached the registry here would fail.
NOWHERE = Registry("127.0.0.1:9", timeout=1.0)


@pytest.fixture(autouse=True)
def fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty disk cache and no listing in memory, as in a new process on a fresh runner."""
    monkeypatch.setenv("CARGOHOLD_CACHE_DIR", str(tmp_path))
    layer_listings.clear_memory()
    yield tmp_path / "layer-listings"
    layer_listings.clear_memory()


# ---- the tag and the namespaces ---------------------------------------------------------------


def test_a_layer_digest_names_its_listing_tag() -> None:
    tag = listing_tag(DIGEST)
    assert tag == "sha256-" + "ab" * 32
    assert Reference.parse(f"127.0.0.1:5000/acme/cache/layer-listings:{tag}").tag == tag, "wanted a valid tag"


@pytest.mark.parametrize(
    "digest",
    ["sha512:" + "ab" * 64, "sha256:" + "ab" * 31, "sha256:" + "AB" * 32, "sha256:" + "zz" * 32, "ab" * 32, ""],
)
def test_a_digest_that_is_not_sha256_has_no_listing_tag(digest: str) -> None:
    assert listing_tag(digest) is None, f"wanted no tag for {digest!r}"


@pytest.mark.parametrize(
    ("reference", "namespace"),
    [
        (f"127.0.0.1:5000/cargohold-demo/cache/backend/cpu:app-1@{DIGEST}", "127.0.0.1:5000/cargohold-demo"),
        (f"ghcr.io/acme/team/cache/web/default@{DIGEST}", "ghcr.io/acme/team"),
        (f"127.0.0.1:5000/cache/backend/cpu@{DIGEST}", "127.0.0.1:5000"),
        (f"127.0.0.1:5000/acme/cache/backend/cpu/packages:six-1@{DIGEST}", "127.0.0.1:5000/acme"),  # a package
        (f"127.0.0.1:5000/cargohold-demo/backend@{DIGEST}", None),  # a final image, not a stage entry
        (f"127.0.0.1:5000/acme/cache/integration:passed-1@{DIGEST}", None),
    ],
)
def test_a_stage_entry_names_its_cache_namespace(reference: str, namespace: str | None) -> None:
    assert entry_namespace(Reference.parse(reference)) == namespace


@pytest.mark.parametrize(
    ("cache", "image", "namespace"),
    [
        (None, f"127.0.0.1:5000/cargohold-demo/backend@{DIGEST}", "127.0.0.1:5000/cargohold-demo"),
        (None, f"127.0.0.1:5000/backend@{DIGEST}", "127.0.0.1:5000"),
        ("ghcr.io/acme/ci-cache", f"127.0.0.1:5000/cargohold-demo/backend@{DIGEST}", "ghcr.io/acme/ci-cache"),
    ],
)
def test_an_image_s_listings_live_in_its_cache_namespace(cache: str | None, image: str, namespace: str) -> None:
    assert cache_namespace(cache, Reference.parse(image)) == namespace
    store = ListingStore.in_namespace(namespace)
    assert str(store) == f"{namespace}/cache/layer-listings"


def test_the_listings_repository_is_told_from_the_stage_repositories() -> None:
    assert is_listings_repository("cargohold-demo/cache/layer-listings")
    assert is_listings_repository("cache/layer-listings")
    assert not is_listings_repository("cargohold-demo/cache/layer-listings/cpu"), "a service named layer-listings"
    assert not is_listings_repository("cargohold-demo/cache/backend/cpu")
    assert not is_listings_repository("cargohold-demo/cache/my-layer-listings")


# ---- the stored artifact -----------------------------------------------------------------------


def test_the_artifact_is_an_oci_manifest_of_one_gzipped_rows_layer_and_a_dated_config() -> None:
    stored = artifact(DIGEST, LISTING, CREATED)
    manifest = json.loads(stored.manifest)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["annotations"] == {LAYER_ANNOTATION: DIGEST}
    assert manifest["config"] == {
        "mediaType": CONFIG_MEDIA_TYPE,
        "digest": sha256_digest(stored.config),
        "size": len(stored.config),
    }
    rows = {"mediaType": ROWS_MEDIA_TYPE, "digest": sha256_digest(stored.rows), "size": len(stored.rows)}
    assert manifest["layers"] == [rows]
    labels = json.loads(stored.config)["config"]["Labels"]
    assert parse_created(labels[LABEL_CREATED]) == parse_created(CREATED), "wanted the created label retention reads"
    assert json.loads(gzip.decompress(stored.rows)) == [
        ["/opt/heavy", 0, "dir"],
        ["/opt/heavy/torch/lib/libtorch_cpu.so", 434_000_000, "file"],
        ["/opt/heavy/bin/torchrun", 0, "symlink"],
        ["/dev/null", 0, "other"],
    ]


def test_the_same_listing_is_the_same_rows_blob_whatever_its_date() -> None:
    first, later = artifact(DIGEST, LISTING, CREATED), artifact(DIGEST, LISTING, "2027-01-01T00:00:00Z")
    assert first.rows == later.rows, "wanted a reproducible blob (gzip without a timestamp)"
    assert first.config != later.config


def test_a_stored_listing_reads_back_as_it_was_written() -> None:
    stored = artifact(DIGEST, LISTING, CREATED)
    assert rows_blob(json.loads(stored.manifest), DIGEST) == sha256_digest(stored.rows)
    assert gunzip_rows(stored.rows) == LISTING


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(artifact(DIGEST, LISTING, CREATED).manifest)
    manifest.update(changes)
    return manifest


@pytest.mark.parametrize(
    "manifest",
    [
        _manifest(annotations={LAYER_ANNOTATION: OTHER}),
        _manifest(annotations=None),
        _manifest(artifactType="application/vnd.example.other"),
        _manifest(layers=[]),
        _manifest(layers=[_manifest()["layers"][0]] * 2),
        _manifest(layers=[{**_manifest()["layers"][0], "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]),
        _manifest(layers=[{**_manifest()["layers"][0], "size": 10**12}]),
        _manifest(layers=[{**_manifest()["layers"][0], "digest": 42}]),
        _manifest(layers=["not a descriptor"]),
    ],
    ids=[
        "another-layer",
        "no-annotations",
        "another-artifact",
        "no-layer",
        "two-layers",
        "a-tar-layer",
        "too-large",
        "bad-digest",
        "bad-descriptor",
    ],
)
def test_a_manifest_that_is_not_this_layer_s_listing_is_not_read(manifest: dict[str, Any]) -> None:
    assert rows_blob(manifest, DIGEST) is None


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"rows": []}',
        b'[["/a", 1]]',
        b'[["/a", -1, "file"]]',
        b'[["/a", true, "file"]]',
        b'[["/a", "1", "file"]]',
        b'[["/a", 1.5, "file"]]',
        b'[["a/relative", 1, "file"]]',
        b'[["/a", 1, "fifo"]]',
        b'[[1, 1, "file"]]',
        b'[["/a", 1, "file"], "row"]',
    ],
)
def test_malformed_rows_are_no_listing(data: bytes) -> None:
    assert decode_rows(data) is None, f"wanted {data!r} refused"


def test_an_empty_layer_has_an_empty_listing() -> None:
    assert decode_rows(b"[]") == ()
    assert decode_rows(encode_rows(LISTING)) == LISTING


def test_a_stored_blob_that_is_not_whole_gzipped_rows_is_no_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = artifact(DIGEST, LISTING, CREATED).rows
    assert gunzip_rows(encode_rows(LISTING)) is None, "wanted plain JSON refused: the blob is gzip"
    assert gunzip_rows(rows[: len(rows) // 2]) is None, "wanted a truncated blob refused"
    assert gunzip_rows(gzip.compress(b'{"not": "rows"}')) is None
    monkeypatch.setattr(layer_listings, "MAX_ROWS_BYTES", 64)
    assert gunzip_rows(rows) is None, "wanted rows larger than the limit unzipped refused"


# ---- the lookup order --------------------------------------------------------------------------


def test_the_first_place_that_has_the_listing_answers_and_later_ones_are_not_asked() -> None:
    asked: list[Origin] = []

    def reader(origin: Origin, listing: Listing | None) -> tuple[Origin, layer_listings.Reader]:
        return origin, lambda: asked.append(origin) or listing

    readers = [reader(Origin.DISK, None), reader(Origin.REGISTRY, LISTING), reader(Origin.DOWNLOAD, ())]
    assert first_found(readers) == (Origin.REGISTRY, LISTING)
    assert asked == [Origin.DISK, Origin.REGISTRY], "wanted no download once the registry had the listing"
    with pytest.raises(LookupError):
        first_found([reader(Origin.DISK, None)])


def test_an_empty_listing_is_found_not_missed() -> None:
    assert first_found([(Origin.DISK, lambda: ()), (Origin.DOWNLOAD, lambda: LISTING)]) == (Origin.DISK, ())


@pytest.mark.parametrize(
    ("origin", "filled"),
    [
        (Origin.DOWNLOAD, (Origin.DISK, Origin.REGISTRY)),
        (Origin.REGISTRY, (Origin.DISK,)),
        (Origin.DISK, ()),
        (Origin.MEMORY, ()),
    ],
)
def test_every_lasting_place_that_missed_is_filled(origin: Origin, filled: tuple[Origin, ...]) -> None:
    assert backfill(origin) == filled


def test_the_disk_keeps_a_listing_whole(fresh_process: Path) -> None:
    assert read_disk(DIGEST) is None
    write_disk(DIGEST, LISTING)
    assert read_disk(DIGEST) == LISTING
    assert [p.name for p in fresh_process.iterdir()] == [f"sha256-{'ab' * 32}.json"], "wanted no file left aside"
    (fresh_process / f"sha256-{'ab' * 32}.json").write_text('[["/a", 1, "fi')
    assert read_disk(DIGEST) is None, "wanted a torn file read as absent"


def test_a_listing_on_disk_is_used_without_the_registry_then_remembered(fresh_process: Path) -> None:
    write_disk(DIGEST, LISTING)
    layer = Layer(NOWHERE, "acme/app", DIGEST)
    assert layer_listing(layer, ListingStore(NOWHERE, "acme/cache/layer-listings")) == LISTING
    (fresh_process / f"sha256-{'ab' * 32}.json").unlink()
    assert layer_listing(layer, None) == LISTING, "wanted the listing remembered in this process"
    layer_listings.clear_memory()
    write_disk(DIGEST, LISTING[:1])
    assert layer_listing(layer, None) == LISTING[:1], "wanted the disk asked again once memory is cleared"
