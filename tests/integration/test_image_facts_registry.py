"""The image facts of the real base images, read from the real local registry.

Their layer listings are kept in the registry too: a fresh runner reads them back instead of
downloading the layers, a malformed one is a download, and a prefetch has them ready.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest

from cargohold import layer_listings
from cargohold.bootstrap import BootstrapReport
from cargohold.image_facts import FindingKind, ImageFacts, read_image_facts
from cargohold.layer_listings import (
    Layer,
    ListingStore,
    TarEntry,
    artifact,
    download,
    layer_listing,
    listing_tag,
    prefetch_entry,
)
from cargohold.local_registry import local_registry_address
from cargohold.reference import Reference
from cargohold.registry import OCI_MANIFEST, Registry, sha256_digest
from tests.integration.oci_images import one_file_image, push_image


def _base(bootstrapped: BootstrapReport, name: str) -> tuple[Registry, Reference]:
    if bootstrapped.base_images is None:
        pytest.skip("base images come from upstream on this engine, not from the local registry")
    ref = Reference.parse(bootstrapped.base_images.references()[name])
    assert ref.digest is not None, f"wanted a digest reference for {name}, got {ref}"
    return Registry(ref.registry, timeout=120.0), ref


def _facts(bootstrapped: BootstrapReport, name: str) -> ImageFacts:
    registry, ref = _base(bootstrapped, name)
    assert ref.digest is not None
    return read_image_facts(registry, ref.repository, ref.digest, role="runtime")


def test_the_build_image_read_as_a_runtime_image_has_compilers_and_runs_as_root(
    bootstrapped: BootstrapReport,
) -> None:
    facts = _facts(bootstrapped, "python-build")
    kinds = {f.kind for f in facts.findings}
    assert {FindingKind.COMPILER_IN_RUNTIME, FindingKind.RUNS_AS_ROOT} <= kinds, f"got {facts.findings}"
    compilers = next(f for f in facts.findings if f.kind is FindingKind.COMPILER_IN_RUNTIME)
    assert any("gcc-12" in path for path in compilers.paths), f"wanted gcc-12 named, got {compilers.paths}"
    assert "/usr/lib/gcc" in compilers.paths, compilers.paths
    assert compilers.bytes > 50_000_000, f"wanted cc1, cc1plus… (>50 MB), got {compilers.bytes}"


def test_the_runtime_python_image_has_no_compilers_and_consistent_sizes(bootstrapped: BootstrapReport) -> None:
    registry, ref = _base(bootstrapped, "python")
    facts = _facts(bootstrapped, "python")
    assert ref.digest is not None
    manifest = json.loads(registry.get_manifest(ref.repository, ref.digest))
    assert facts.digest == ref.digest
    assert FindingKind.COMPILER_IN_RUNTIME not in {f.kind for f in facts.findings}, f"got {facts.findings}"
    layer_sizes = sum(layer["size"] for layer in manifest["layers"])
    assert facts.compressed_size == layer_sizes, f"wanted {layer_sizes}, got {facts.compressed_size}"
    assert facts.uncompressed_size > facts.compressed_size, f"{facts.uncompressed_size} vs {facts.compressed_size}"
    assert [layer.digest for layer in facts.layers] == [layer["digest"] for layer in manifest["layers"]]
    assert all(layer.created_by.startswith("mmdebstrap") for layer in facts.layers), facts.layers
    assert "/usr/bin/python3.11" in dict(facts.largest_paths), facts.largest_paths
    assert facts.lines()[0].startswith(f"{ref.repository}@{ref.digest} "), facts.lines()[0]


def test_a_budget_is_judged_on_the_real_size(bootstrapped: BootstrapReport) -> None:
    registry, ref = _base(bootstrapped, "python")
    assert ref.digest is not None
    tight = read_image_facts(registry, ref.repository, ref.digest, budget=1_000_000)
    assert tight.over_budget
    assert FindingKind.OVER_BUDGET in {f.kind for f in tight.findings}
    roomy = read_image_facts(registry, ref.repository, ref.digest, budget=tight.compressed_size)
    assert not roomy.over_budget
    assert roomy.lines()[0].endswith(": OK"), roomy.lines()[0]


# ---- layer listings kept in the registry -----------------------------------------------------

RUN = f"listings-test-{secrets.token_hex(4)}"  # one namespace per run: no other run's listings


@dataclass(frozen=True)
class CountingRegistry(Registry):
    """The real registry client, noting each layer blob it streams (a download for a listing)."""

    opened: list[str] = field(default_factory=list, compare=False)

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BinaryIO]:
        self.opened.append(digest)
        with super().open_blob(repository, digest) as blob:
            yield blob


@pytest.fixture
def store(bootstrapped: BootstrapReport, request: pytest.FixtureRequest) -> Iterator[ListingStore]:
    """A listings store of this test's own, emptied afterwards."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    store = ListingStore.in_namespace(f"{local_registry_address()}/{RUN}/{name}")
    yield store
    for tag in store.registry.tags(store.repository):
        if digest := store.registry.manifest_digest(store.repository, tag):
            store.registry.delete_manifest(store.repository, digest)


def fresh_process(monkeypatch: pytest.MonkeyPatch, disk: Path) -> None:
    """What a new process on a fresh runner has: no listing in memory, an empty disk cache."""
    layer_listings.clear_memory()
    monkeypatch.setenv("CARGOHOLD_CACHE_DIR", str(disk))


def test_a_listing_stored_after_a_download_is_read_back_without_the_layer(
    bootstrapped: BootstrapReport, store: ListingStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, ref = _base(bootstrapped, "python")
    assert ref.digest is not None
    layers = [
        layer["digest"]
        for layer in json.loads(Registry(ref.registry).get_manifest(ref.repository, ref.digest))["layers"]
    ]

    fresh_process(monkeypatch, tmp_path / "first-runner")
    cold = CountingRegistry(ref.registry, timeout=120.0)
    first = read_image_facts(cold, ref.repository, ref.digest, listings=store)
    assert cold.opened == layers, f"wanted every layer downloaded on a cold runner, got {cold.opened}"
    stored = [store.read(digest) for digest in layers]
    assert all(stored), "wanted every listing stored in the registry"

    fresh_process(monkeypatch, tmp_path / "second-runner")
    warm = CountingRegistry(ref.registry, timeout=120.0)
    second = read_image_facts(warm, ref.repository, ref.digest, listings=store)
    assert warm.opened == [], f"wanted no layer downloaded on a fresh runner, got {warm.opened}"
    assert second == first
    on_disk = sorted(p.name for p in (tmp_path / "second-runner" / "layer-listings").iterdir())
    assert on_disk == sorted(f"{d.replace(':', '-')}.json" for d in layers), "wanted the registry's copies kept on disk"


def _stored(store: ListingStore, digest: str, rows: bytes, annotated: str) -> None:
    """A listing artifact for ``digest`` whose rows blob is ``rows`` (gzipped here), annotated as ``annotated``'s."""
    made = artifact(annotated, (), "2026-11-23T12:00:00Z")
    blob = gzip.compress(rows, mtime=0)
    manifest = json.loads(made.manifest)
    manifest["layers"][0] |= {"digest": sha256_digest(blob), "size": len(blob)}
    store.registry.push_blob(store.repository, sha256_digest(blob), blob)
    store.registry.push_blob(store.repository, sha256_digest(made.config), made.config)
    tag = listing_tag(digest)
    assert tag is not None
    store.registry.put_manifest(store.repository, tag, json.dumps(manifest).encode(), OCI_MANIFEST)


@pytest.mark.parametrize(
    ("rows", "lists_another_layer"),
    [(b'{"not": "rows"}', False), (b'[["/etc/passwd", 1, "file"]]', True)],
    ids=["malformed-rows", "another-layer-s-listing"],
)
def test_a_malformed_stored_listing_is_treated_as_absent_and_the_layer_downloaded(
    bootstrapped: BootstrapReport,
    store: ListingStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rows: bytes,
    *,
    lists_another_layer: bool,
) -> None:
    _, ref = _base(bootstrapped, "python")
    assert ref.digest is not None
    manifest = json.loads(Registry(ref.registry).get_manifest(ref.repository, ref.digest))
    digest = min(manifest["layers"], key=lambda layer: layer["size"])["digest"]
    _stored(store, digest, rows, "sha256:" + "0" * 64 if lists_another_layer else digest)
    assert store.read(digest) is None, "wanted the planted listing refused"

    fresh_process(monkeypatch, tmp_path)
    counting = CountingRegistry(ref.registry, timeout=120.0)
    listing = layer_listing(Layer(counting, ref.repository, digest), store)
    assert counting.opened == [digest], "wanted the layer downloaded instead"
    assert listing == download(Layer(Registry(ref.registry, timeout=120.0), ref.repository, digest))
    assert store.read(digest) == listing, "wanted the planted listing replaced by the real one"


def _one_layer_entry(registry: Registry, repository: str, tag: str) -> str:
    """Push a one-file, one-layer image as a stage cache entry; its reference by digest."""
    image = one_file_image("opt/venv/marker.txt", f"{RUN} {tag}\n".encode())
    return f"{registry.host}/{repository}:{tag}@{push_image(registry, repository, tag, image)}"


def test_a_prefetched_entry_s_listings_are_ready_for_the_report(
    bootstrapped: BootstrapReport, store: ListingStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    namespace = store.repository.removesuffix("/cache/layer-listings")
    entry = f"{namespace}/cache/backend/cpu"
    reference = _one_layer_entry(store.registry, entry, "dependencies-1")
    digest = json.loads(store.registry.get_manifest(entry, "dependencies-1"))["layers"][0]["digest"]

    fresh_process(monkeypatch, tmp_path)
    prefetch_entry(reference).join(60)
    assert store.read(digest) == (TarEntry("/opt/venv/marker.txt", len(f"{RUN} dependencies-1\n")),)

    counting = CountingRegistry(store.registry.host)
    assert layer_listing(Layer(counting, entry, digest), store) == store.read(digest)
    assert counting.opened == [], "wanted the report to find the prefetched listing, not download the layer"
    store.registry.delete_manifest(entry, reference.rpartition("@")[2])
