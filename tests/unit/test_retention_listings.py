"""Retention of the layer listings: aged like cache entries, never cut down to the newest N."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cargohold.retention import CachedImage, select_expired

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LISTINGS = "acme/cache/layer-listings"
STAGES = "acme/cache/backend/cpu"


def entry(repository: str, tag: str, days_old: float | None) -> CachedImage:
    created = None if days_old is None else NOW - timedelta(days=days_old)
    return CachedImage(repository, tag, f"sha256:{tag:0>64}", created)


ENTRIES = [
    entry(STAGES, "a1", 1),
    entry(STAGES, "a2", 2),
    entry(STAGES, "a3", 3),
    entry(LISTINGS, "b1", 1),
    entry(LISTINGS, "b2", 2),
    entry(LISTINGS, "b40", 40),
    entry(LISTINGS, "b0", None),
]


def names(entries: list[CachedImage]) -> list[tuple[str, str]]:
    return [(e.repository, e.tag) for e in entries]


def test_keep_newest_leaves_every_listing() -> None:
    expired = select_expired(ENTRIES, now=NOW, older_than=None, keep_newest=1)
    assert names(expired) == [(STAGES, "a3"), (STAGES, "a2")], "wanted only the stage entries cut to one"


def test_keep_newest_zero_still_leaves_every_listing() -> None:
    expired = select_expired(ENTRIES, now=NOW, older_than=None, keep_newest=0)
    assert {r for r, _ in names(expired)} == {STAGES}


def test_older_than_ages_listings_like_entries() -> None:
    expired = select_expired(ENTRIES, now=NOW, older_than=timedelta(days=7), keep_newest=1)
    assert names(expired) == [(STAGES, "a3"), (STAGES, "a2"), (LISTINGS, "b0"), (LISTINGS, "b40")]


def test_a_listing_of_a_namespace_without_a_folder_is_aged_not_counted() -> None:
    entries = [entry("cache/layer-listings", "c1", 1), entry("cache/layer-listings", "c9", 9)]
    assert select_expired(entries, now=NOW, older_than=None, keep_newest=0) == []
    assert names(select_expired(entries, now=NOW, older_than=timedelta(days=5), keep_newest=0)) == [
        ("cache/layer-listings", "c9")
    ]
