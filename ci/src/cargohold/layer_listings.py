"""Layer listings: the files of a layer, computed once per layer digest and kept where a later run finds them.

The facts report needs one tar listing per layer. A layer never changes under
its digest, so its listing is looked up, in this order:

    this process → the local disk → the registry → the layer itself (downloaded)

and every place that missed is filled afterwards (``backfill``), best effort: a
failed write is logged at debug level and never fails the report. The registry
copy is what a fresh CI runner finds (local state wiped, registry kept): a small
OCI artifact in the cache namespace,

    <cache namespace>/cache/layer-listings:sha256-<hex of the layer digest>

an image manifest whose one layer is the gzipped JSON rows ``[path, size, kind]``
(the disk format) and whose config carries the stage cache's created label, so
``prune-cache --older-than`` ages it. A stored listing that is unreadable, or is
not the listing of the layer asked for, is treated as absent.

``prefetch_entry`` starts the listings of a just-exported stage entry in a daemon
thread: the runtime image is assembled from exactly those layers, so its facts
report at the end of the build finds them ready. A report asking for a layer
whose listing is being computed waits for it instead of downloading it again.
"""

from __future__ import annotations

import enum
import gzip
import io
import json
import logging
import os
import tarfile
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, get_args

from cargohold.errors import CargoholdError, RegistryError
from cargohold.inflight import Inflight
from cargohold.packages import is_packages_repository
from cargohold.paths import state_path
from cargohold.reference import Reference
from cargohold.registry import OCI_MANIFEST, Registry, sha256_digest
from cargohold.stage_cache import LABEL_CREATED, created_now

log = logging.getLogger(__name__)

EntryKind = Literal["file", "dir", "symlink", "other"]

LISTINGS_REPOSITORY: Final = "cache/layer-listings"  # under the cache namespace
ARTIFACT_TYPE: Final = "application/vnd.cargohold.layer-listing.v1"
CONFIG_MEDIA_TYPE: Final = "application/vnd.cargohold.layer-listing.config.v1+json"
ROWS_MEDIA_TYPE: Final = "application/vnd.cargohold.layer-listing.rows.v1+json+gzip"
LAYER_ANNOTATION: Final = "dev.cargohold.layer.digest"  # which layer a stored listing lists
MAX_ROWS_BYTES: Final = 256 * 1024 * 1024  # unzipped; a 12,000-file torch layer lists in 0.75 MB
PREFETCH_WORKERS: Final = 1  # the engine builds the next stages meanwhile, on a 2-core runner
_KINDS: Final = frozenset(get_args(EntryKind))
_SHA256_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class TarEntry:
    """One member of a layer tar; ``path`` is absolute (``/usr/bin/gcc``), ``size`` 0 unless a file."""

    path: str
    size: int
    kind: EntryKind = "file"


Listing = tuple[TarEntry, ...]


class Origin(enum.Enum):
    """Where a listing was found; ``LOOKUP_ORDER`` is the order they are asked in."""

    MEMORY = "this process"
    DISK = "the local disk"
    REGISTRY = "the registry"
    DOWNLOAD = "a download of the layer"


LOOKUP_ORDER: Final = (Origin.MEMORY, Origin.DISK, Origin.REGISTRY, Origin.DOWNLOAD)
Reader = Callable[[], Listing | None]


# ---- the pure parts ----------------------------------------------------------------------------


def first_found(readers: Sequence[tuple[Origin, Reader]]) -> tuple[Origin, Listing]:
    """The first listing a reader returns, asked in order, and where it came from; later readers are not asked.

    LookupError when none returns one (the last reader, the download, returns one or raises).
    """
    for origin, read in readers:
        if (listing := read()) is not None:
            return origin, listing
    raise LookupError("no reader returned a listing")


def backfill(origin: Origin) -> tuple[Origin, ...]:
    """The caches to write after a listing came from ``origin``: the lasting ones asked before it, which missed."""
    return tuple(o for o in LOOKUP_ORDER[: LOOKUP_ORDER.index(origin)] if o in {Origin.DISK, Origin.REGISTRY})


def listing_tag(digest: str) -> str | None:
    """``sha256-<hex>``, the tag of a layer's stored listing; None for a digest that is not sha256 (not stored)."""
    algorithm, _, hex_digits = digest.partition(":")
    if algorithm != "sha256" or len(hex_digits) != 64 or not _SHA256_HEX.issuperset(hex_digits):  # noqa: PLR2004
        return None
    return f"sha256-{hex_digits}"


def encode_rows(listing: Listing) -> bytes:
    """The JSON rows ``[[path, size, kind], …]`` (on disk as they are, in the registry gzipped)."""
    return json.dumps([[e.path, e.size, e.kind] for e in listing], separators=(",", ":")).encode()


def decode_rows(data: bytes) -> Listing | None:
    """The listing the JSON rows hold; None when they are not JSON rows of an absolute path, a size and a kind."""
    try:
        rows = json.loads(data)
    except ValueError:
        return None
    if not isinstance(rows, list) or not all(_valid_row(row) for row in rows):
        return None
    return tuple(TarEntry(path, size, kind) for path, size, kind in rows)


def _valid_row(row: object) -> bool:
    if not isinstance(row, list) or len(row) != 3:  # noqa: PLR2004 - path, size, kind
        return False
    path, size, kind = row
    sized = isinstance(size, int) and not isinstance(size, bool) and size >= 0
    return isinstance(path, str) and path.startswith("/") and sized and kind in _KINDS


def gunzip_rows(blob: bytes) -> Listing | None:
    """The listing of a stored (gzipped) rows blob; None when it is not gzip, too large unzipped, or not rows."""
    unzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        data = unzip.decompress(blob, MAX_ROWS_BYTES)
    except zlib.error:
        return None
    if not unzip.eof or unzip.unconsumed_tail:  # truncated, or larger than MAX_ROWS_BYTES
        return None
    return decode_rows(data)


@dataclass(frozen=True)
class Artifact:
    """A listing as the registry stores it: the blobs and the manifest that ties them to their layer."""

    rows: bytes  # gzipped JSON rows
    config: bytes
    manifest: bytes


def artifact(digest: str, listing: Listing, created: str) -> Artifact:
    """The stored form of ``digest``'s listing, made at ``created`` (RFC 3339, UTC) (pure)."""
    rows = gzip.compress(encode_rows(listing), mtime=0)  # the same listing is the same blob
    labels = {LABEL_CREATED: created, LAYER_ANNOTATION: digest}
    config = json.dumps({"created": created, "config": {"Labels": labels}}, sort_keys=True).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": ROWS_MEDIA_TYPE, "digest": sha256_digest(rows), "size": len(rows)}],
        "annotations": {LAYER_ANNOTATION: digest},
    }
    return Artifact(rows, config, json.dumps(doc, separators=(",", ":")).encode())


def rows_blob(manifest: Mapping[str, Any], digest: str) -> str | None:
    """The digest of the rows blob when ``manifest`` is a stored listing of the layer ``digest``, else None."""
    layers = manifest.get("layers")
    annotations = manifest.get("annotations")
    if manifest.get("artifactType") != ARTIFACT_TYPE or not isinstance(layers, list) or len(layers) != 1:
        return None
    if not isinstance(annotations, dict) or annotations.get(LAYER_ANNOTATION) != digest:
        return None  # a tag moved by hand, or another layer's listing: not ours to trust
    rows = layers[0]
    if not isinstance(rows, dict) or rows.get("mediaType") != ROWS_MEDIA_TYPE:
        return None
    size, blob = rows.get("size"), rows.get("digest")
    fits = isinstance(size, int) and 0 < size <= MAX_ROWS_BYTES
    return blob if fits and isinstance(blob, str) and blob.startswith("sha256:") else None


def entry_namespace(reference: Reference) -> str | None:
    """``host[/namespace]`` of a stage entry ``host[/namespace]/cache/<service>/<variant>[/packages]``, else None."""
    parts = reference.repository.split("/")
    if is_packages_repository(reference.repository):  # a locked package's entry (python.layer-per-package)
        parts = parts[:-1]
    if len(parts) < 3 or parts[-3] != "cache":  # noqa: PLR2004 - cache, service, variant
        return None
    return "/".join([reference.registry, *parts[:-3]])


def is_listings_repository(repository: str) -> bool:
    """True for the listings repository of any namespace (``[namespace/]cache/layer-listings``, no host)."""
    return repository == LISTINGS_REPOSITORY or repository.endswith(f"/{LISTINGS_REPOSITORY}")


def list_layer(blob: bytes | BinaryIO) -> Listing:
    """The members of a layer tar (gzip or uncompressed), read as a stream; tarfile.TarError when unreadable."""
    stream = io.BytesIO(blob) if isinstance(blob, bytes) else blob
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        return tuple(TarEntry(_absolute(m.name), m.size if m.isreg() else 0, _kind(m)) for m in tar)


def _absolute(name: str) -> str:
    """``./usr/bin/`` → ``/usr/bin``."""
    return "/" + "/".join(part for part in name.split("/") if part not in {"", "."})


def _kind(member: tarfile.TarInfo) -> EntryKind:
    return "file" if member.isreg() else "dir" if member.isdir() else "symlink" if member.issym() else "other"


# ---- the places a listing is kept --------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer to list: a digest, and a repository of a registry that holds its blob."""

    registry: Registry
    repository: str
    digest: str


@dataclass(frozen=True)
class ListingStore:
    """The registry repository that keeps listings, one tag per layer digest."""

    registry: Registry
    repository: str  # without the host

    @classmethod
    def in_namespace(cls, namespace: str) -> ListingStore:
        """The store of the cache namespace ``host[/namespace]``."""
        ref = Reference.parse(f"{namespace}/{LISTINGS_REPOSITORY}")
        return cls(Registry(ref.registry, timeout=10.0), ref.repository)

    def read(self, digest: str) -> Listing | None:
        """The stored listing of ``digest``; None when absent, unreadable or not that layer's (logged)."""
        if (tag := listing_tag(digest)) is None:
            return None
        try:
            manifest = json.loads(self.registry.get_manifest(self.repository, tag))
            blob = rows_blob(manifest, digest) if isinstance(manifest, dict) else None
            listing = None if blob is None else gunzip_rows(self.registry.get_blob(self.repository, blob))
        except (CargoholdError, ValueError) as e:  # absent (a 404), unreachable, or a blob not matching its digest
            why = "not stored there" if "HTTP 404" in str(e) else str(e)  # a 404 is the usual case: one short line
            log.debug("layer listing %s: not read from %s (%s)", digest[:19], self, why)
            return None
        if listing is None:
            log.debug("layer listing %s: the stored one in %s is malformed, ignored", digest[:19], self)
        return listing

    def write(self, digest: str, listing: Listing) -> None:
        """Store ``digest``'s listing, labelled with the time now; raises for registry trouble."""
        if (tag := listing_tag(digest)) is None:
            return
        stored = artifact(digest, listing, created_now())
        self.registry.push_blob(self.repository, sha256_digest(stored.rows), stored.rows)
        self.registry.push_blob(self.repository, sha256_digest(stored.config), stored.config)
        self.registry.put_manifest(self.repository, tag, stored.manifest, OCI_MANIFEST)

    def __str__(self) -> str:
        return f"{self.registry.host}/{self.repository}"


def _disk_path(digest: str) -> Path:
    return state_path("layer-listings", digest.replace(":", "-") + ".json")


def read_disk(digest: str) -> Listing | None:
    """The listing kept on this machine; None when absent or unreadable."""
    try:
        return decode_rows(_disk_path(digest).read_bytes())
    except OSError:
        return None


def write_disk(digest: str, listing: Listing) -> None:
    """Keep the listing on this machine; written aside and renamed, so a reader never sees half of it."""
    path = _disk_path(digest)
    aside = path.with_name(f".{path.name}.{os.getpid()}")  # two processes may list the same layer
    try:
        aside.write_bytes(encode_rows(listing))
        aside.replace(path)
    finally:
        aside.unlink(missing_ok=True)


def download(layer: Layer) -> Listing:
    """The listing of the layer's blob, streamed (layers can be gigabytes) and checked against its digest."""
    try:
        with layer.registry.open_blob(layer.repository, layer.digest) as blob:
            return list_layer(blob)
    except tarfile.TarError as e:
        msg = f"the layer {layer.digest[:19]} of {layer.repository} is not a readable tar ({e})"
        raise RegistryError(msg, "only gzip and uncompressed layers are read; zstd is not supported yet") from e


# ---- the lookup --------------------------------------------------------------------------------

# Layer digest → listing, for the images of one run; the oldest are the base layers the images share.
_LISTINGS: Final = Inflight[str, Listing](limit=64)


def layer_listing(layer: Layer, store: ListingStore | None) -> Listing:
    """The layer's listing, looked up in ``LOOKUP_ORDER`` (the registry only with a ``store``).

    While another thread computes the same layer's listing (a prefetch), this waits for it.
    """
    began = time.monotonic()
    listing, computed = _LISTINGS.get(layer.digest, lambda: _found(layer, store))
    if not computed:  # remembered, or computed meanwhile by a prefetch this call waited for
        waited = time.monotonic() - began
        log.debug("layer listing %s: from %s (%.2f s)", layer.digest[:19], Origin.MEMORY.value, waited)
    return listing


def _found(layer: Layer, store: ListingStore | None) -> Listing:
    began = time.monotonic()
    readers: list[tuple[Origin, Reader]] = [
        (Origin.DISK, lambda: read_disk(layer.digest)),
        (Origin.REGISTRY, lambda: store.read(layer.digest) if store else None),
        (Origin.DOWNLOAD, lambda: download(layer)),
    ]
    origin, listing = first_found(readers)
    log.debug("layer listing %s: from %s (%.2f s)", layer.digest[:19], origin.value, time.monotonic() - began)
    writers: dict[Origin, Callable[[], None]] = {
        Origin.DISK: lambda: write_disk(layer.digest, listing),
        Origin.REGISTRY: lambda: store.write(layer.digest, listing) if store else None,
    }
    for place in backfill(origin):
        _best_effort(layer.digest, place, writers[place])
    return listing


def _best_effort(digest: str, place: Origin, write: Callable[[], None]) -> None:
    try:
        write()
    except Exception as e:  # noqa: BLE001 - a cache is only an accelerator: no failure to fill it may fail a report
        log.debug("layer listing %s: not written to %s (%s: %s)", digest[:19], place.value, type(e).__name__, e)


# ---- the prefetch ------------------------------------------------------------------------------

_SLOTS: Final = threading.BoundedSemaphore(PREFETCH_WORKERS)


def prefetch_entry(reference: str) -> threading.Thread:
    """Start the listings of every layer of a just-pushed stage entry (by digest) in a daemon thread.

    Returns at once (the thread, for a test to join) and never raises: a prefetch only saves
    the report a wait. The thread dies with the process: it holds neither an interrupt nor the exit.
    """
    name = f"cargohold listings {reference.rpartition(':')[2][:12]}"
    thread = threading.Thread(target=_prefetch, args=(reference,), name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError as e:  # no thread to be had: the report lists the layers itself
        log.debug("layer listings of %s: no prefetch (%s)", reference, e)
    return thread


def _prefetch(reference: str) -> None:
    try:
        ref = Reference.parse(reference)
        namespace = entry_namespace(ref)
        store = ListingStore.in_namespace(namespace) if namespace else None
        registry = Registry(ref.registry, timeout=300.0)
        manifest = json.loads(registry.get_manifest(ref.repository, ref.digest or str(ref.tag)))
        log.debug("layer listings of %s: prefetching %d layers", reference, len(manifest["layers"]))
        for descriptor in manifest["layers"]:
            with _SLOTS:  # one layer at a time across entries: the build needs the cores
                layer_listing(Layer(registry, ref.repository, str(descriptor["digest"])), store)
    except Exception as e:  # noqa: BLE001 - the report computes what a prefetch could not; nothing here fails a build
        log.debug("layer listings of %s: prefetch stopped (%s: %s)", reference, type(e).__name__, e)


def clear_memory() -> None:
    """Forget the listings of this process (tests: a fresh process, without starting one)."""
    _LISTINGS.clear()
