"""Retention of the registry cache: which cache tags to delete, and deleting them.

Cache entries are images in repositories with a ``/cache/`` segment, e.g.
``127.0.0.1:5000/cargohold-demo/cache/backend/cpu:deps-<key>``, each labelled
``dev.cargohold.created`` (RFC 3339, UTC) when it was pushed. Two rules,
applied per repository and combinable: older than an age, or beyond the
newest N. ``select_expired`` is the pure rule; ``prune_cache`` lists, selects
and deletes.

The layer listings (``<namespace>/cache/layer-listings``, one tag per layer
digest, see ``layer_listings``) are aged like entries but never counted: N is
per service and variant, and the listings repository holds one tag for every
layer of every service, so its newest N say nothing about what is still used.
A pruned listing is only computed again, from its layer, the next time a
report needs it. The same goes for the packages repositories
(``…/cache/<service>/<variant>/packages``, see ``packages``): one tag per
locked package, so they are aged but never counted; a pruned package is
installed again the next time a lockfile change needs it.

Deleting only removes manifests (and so their tags). The registry frees the
storage of their blobs at its own garbage collection
(``docker-registry garbage-collect <config>``, with the registry stopped or
read-only), which this does not run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cargohold.errors import CargoholdError
from cargohold.layer_listings import is_listings_repository
from cargohold.packages import is_packages_repository
from cargohold.registry import Registry
from cargohold.stage_cache import LABEL_CREATED

CREATED_LABEL: Final = LABEL_CREATED  # written by the stage cache on every export
CACHE_SEGMENT: Final = "/cache/"


class RetentionError(CargoholdError):
    """A prune was asked for without a rule, or with a negative one."""


@dataclass(frozen=True)
class CachedImage:
    """One cache tag as the registry holds it."""

    repository: str  # without the host: namespace/cache/service/variant
    tag: str
    digest: str
    created: datetime | None  # None: no parsable created label; counted as the oldest

    def line(self) -> str:
        """``repository:tag  sha256:0123456789ab  created …``, for reports."""
        created = self.created.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created else "unknown"
        return f"{self.repository}:{self.tag}  {self.digest[:19]}  created {created}"


def parse_created(value: object) -> datetime | None:
    """The UTC time of an RFC 3339 label (no offset counts as UTC); None when absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def select_expired(
    entries: Iterable[CachedImage],
    *,
    now: datetime,
    older_than: timedelta | None,
    keep_newest: int | None,
) -> list[CachedImage]:
    """The entries to delete, by repository then oldest first.

    Per repository, an entry is expired when it is older than ``older_than`` or
    not among the ``keep_newest`` newest; either rule may be None. Entries
    without a created time count as the oldest. An entry sharing its digest
    with a kept one stays too: deleting the digest would take the kept tag.
    The layer listings and packages repositories take the age rule only
    (``keep_newest`` is per service and variant; they hold a tag per layer or package).
    """
    check_rules(older_than, keep_newest)
    unique = set(entries)
    expired: set[CachedImage] = set()
    for repository, group in _by_repository(unique).items():
        ranked = sorted(group, key=_newest_first)
        count = None if is_listings_repository(repository) or is_packages_repository(repository) else keep_newest
        expired |= {e for rank, e in enumerate(ranked) if _expired(e, rank, now, older_than, count)}
    kept_digests = {(e.repository, e.digest) for e in unique - expired}
    return sorted((e for e in expired if (e.repository, e.digest) not in kept_digests), key=_report_order)


def check_rules(older_than: timedelta | None, keep_newest: int | None) -> None:
    """RetentionError unless at least one rule is given and none is negative."""
    if older_than is None and keep_newest is None:
        raise RetentionError("no retention rule given", "pass --older-than, --keep-newest, or both")
    if keep_newest is not None and keep_newest < 0:
        raise RetentionError(f"keep-newest {keep_newest} is negative", "pass 0 or more")
    if older_than is not None and older_than < timedelta(0):
        raise RetentionError(f"older-than {older_than} is negative", "pass an age such as 7d")


def _expired(
    entry: CachedImage, rank: int, now: datetime, older_than: timedelta | None, keep_newest: int | None
) -> bool:
    too_many = keep_newest is not None and rank >= keep_newest
    too_old = older_than is not None and (entry.created is None or now - entry.created > older_than)
    return too_many or too_old


def _by_repository(entries: Iterable[CachedImage]) -> dict[str, list[CachedImage]]:
    groups: dict[str, list[CachedImage]] = {}
    for entry in entries:
        groups.setdefault(entry.repository, []).append(entry)
    return groups


def _newest_first(entry: CachedImage) -> tuple[bool, float, str, str]:
    # ties broken by digest (tags of one image stay together), then tag
    stamp = entry.created.timestamp() if entry.created else 0.0
    return entry.created is None, -stamp, entry.digest, entry.tag


def _report_order(entry: CachedImage) -> tuple[str, bool, float, str]:
    stamp = entry.created.timestamp() if entry.created else 0.0
    return entry.repository, entry.created is not None, stamp, entry.tag


@dataclass(frozen=True)
class PruneReport:
    """What a prune deleted (or, dry, would delete) and how much it kept."""

    namespace: str
    kept: int
    deleted: tuple[CachedImage, ...]
    dry_run: bool
    # 0: the storage is freed only at the registry's garbage collection, and
    # blobs shared with kept images (base layers) are not freed at all.
    bytes_freed: int = 0

    @property
    def images(self) -> int:
        """Distinct manifests among the deleted tags."""
        return len({(e.repository, e.digest) for e in self.deleted})

    def lines(self) -> list[str]:
        """A headline, one line per deleted tag, and the garbage-collection reminder."""
        verb = "would delete" if self.dry_run else "deleted"
        head = f"cache {self.namespace}: {verb} {_plural(len(self.deleted), 'tag')}"
        head += f" ({_plural(self.images, 'image')}), kept {self.kept}"
        body = [f"  {verb} {e.line()}" for e in self.deleted]
        tail = ["  storage is freed by the registry's garbage collection (docker-registry garbage-collect)"]
        return [head, *body, *(tail if self.deleted and not self.dry_run else [])]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def list_cache_entries(registry: Registry, namespace_prefix: str) -> list[CachedImage]:
    """Every cache tag under ``namespace_prefix`` (``host/namespace`` or ``namespace``), with digest and date."""
    prefix = _repository_prefix(registry, namespace_prefix)
    entries: list[CachedImage] = []
    for repository in registry.catalog():
        if CACHE_SEGMENT in repository and _under(repository, prefix):
            entries += _repository_entries(registry, repository)
    return entries


def _repository_entries(registry: Registry, repository: str) -> list[CachedImage]:
    created: dict[str, datetime | None] = {}  # per digest: tags of one image share its config
    entries: list[CachedImage] = []
    for tag in registry.tags(repository):
        digest = registry.manifest_digest(repository, tag)
        if digest is None:  # deleted since the tag list was read
            continue
        if digest not in created:
            created[digest] = _created(registry, repository, digest)
        entries.append(CachedImage(repository, tag, digest, created[digest]))
    return entries


def _created(registry: Registry, repository: str, digest: str) -> datetime | None:
    try:
        labels = registry.image_config(repository, digest).get("config", {}).get("Labels") or {}
    except (KeyError, TypeError, ValueError, AttributeError):  # not an image config we can read: the oldest
        return None
    return parse_created(labels.get(CREATED_LABEL))


def _repository_prefix(registry: Registry, namespace_prefix: str) -> str:
    first, _, rest = namespace_prefix.strip("/").partition("/")
    if first == registry.host:
        return rest
    if "." in first or ":" in first or first == "localhost":
        msg = f"{namespace_prefix} is not on the registry {registry.host}"
        raise RetentionError(msg, f"name a namespace of {registry.host}, or that namespace's registry")
    return namespace_prefix.strip("/")


def _under(repository: str, prefix: str) -> bool:
    return not prefix or repository == prefix or repository.startswith(prefix + "/")


def prune_cache(
    registry: Registry,
    namespace_prefix: str,
    *,
    older_than: timedelta | None,
    keep_newest: int | None,
    dry_run: bool,
    now: datetime | None = None,
) -> PruneReport:
    """Delete the expired cache tags under ``namespace_prefix`` (see ``select_expired``); ``now`` defaults to now."""
    check_rules(older_than, keep_newest)
    entries = list_cache_entries(registry, namespace_prefix)
    when = now or datetime.now(UTC)
    expired = select_expired(entries, now=when, older_than=older_than, keep_newest=keep_newest)
    if not dry_run:
        # Deleting a manifest by digest removes every tag pointing to it in that
        # repository, so each distinct digest is deleted once (select_expired
        # never expires a digest that a kept tag shares).
        for repository, digest in _distinct_digests(expired):
            registry.delete_manifest(repository, digest)
    return PruneReport(namespace_prefix, len(entries) - len(expired), tuple(expired), dry_run)


def _distinct_digests(entries: Sequence[CachedImage]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((e.repository, e.digest) for e in entries))
