from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cargohold.retention import CachedImage, PruneReport, RetentionError, parse_created, select_expired

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REPO = "acme/cache/backend/cpu"


def entry(tag: str, days_old: float | None, repository: str = REPO, digest: str | None = None) -> CachedImage:
    created = None if days_old is None else NOW - timedelta(days=days_old)
    return CachedImage(repository, tag, digest or f"sha256:{tag:0>64}", created)


def tags(entries: list[CachedImage]) -> list[str]:
    return [e.tag for e in entries]


def test_age_only_expires_what_is_older_than_the_limit() -> None:
    entries = [entry("a", 1), entry("b", 8), entry("c", 30), entry("d", 7)]
    expired = select_expired(entries, now=NOW, older_than=timedelta(days=7), keep_newest=None)
    assert tags(expired) == ["c", "b"], "wanted the two older than 7 days, oldest first (exactly 7 days stays)"


def test_count_only_keeps_the_newest_n_whatever_their_age() -> None:
    entries = [entry("a", 100), entry("b", 300), entry("c", 200), entry("d", 400)]
    expired = select_expired(entries, now=NOW, older_than=None, keep_newest=2)
    assert tags(expired) == ["d", "b"]


def test_both_rules_expire_what_either_says() -> None:
    entries = [entry("new", 1), entry("second", 2), entry("third", 3), entry("old", 40)]
    assert tags(select_expired(entries, now=NOW, older_than=timedelta(days=30), keep_newest=3)) == ["old"]
    assert tags(select_expired(entries, now=NOW, older_than=timedelta(days=30), keep_newest=2)) == ["old", "third"]
    assert tags(select_expired(entries, now=NOW, older_than=timedelta(days=1.5), keep_newest=10)) == [
        "old",
        "third",
        "second",
    ]


def test_keep_newest_zero_expires_everything() -> None:
    entries = [entry("a", 1), entry("b", 2)]
    assert tags(select_expired(entries, now=NOW, older_than=None, keep_newest=0)) == ["b", "a"]


def test_each_repository_keeps_its_own_newest() -> None:
    cuda = "acme/cache/backend/cuda"
    entries = [
        entry("cpu-1", 1),
        entry("cpu-2", 2),
        entry("cpu-3", 3),
        entry("cuda-9", 90, cuda),
        entry("cuda-8", 80, cuda),
    ]
    expired = select_expired(entries, now=NOW, older_than=None, keep_newest=2)
    assert [(e.repository, e.tag) for e in expired] == [(REPO, "cpu-3")], "the old cuda entries are its newest two"


def test_entries_without_a_created_time_count_as_the_oldest() -> None:
    entries = [entry("undated", None), entry("ancient", 999), entry("new", 0)]
    assert tags(select_expired(entries, now=NOW, older_than=None, keep_newest=2)) == ["undated"]
    assert tags(select_expired(entries, now=NOW, older_than=timedelta(days=1), keep_newest=None)) == [
        "undated",
        "ancient",
    ]


def test_a_digest_shared_with_a_kept_tag_is_kept() -> None:
    shared = "sha256:" + "5" * 64
    entries = [entry("deps-a", 1, digest=shared), entry("deps-b", 1, digest=shared), entry("heavy", 5)]
    assert tags(select_expired(entries, now=NOW, older_than=None, keep_newest=1)) == ["heavy"]
    both = select_expired(entries, now=NOW, older_than=timedelta(hours=1), keep_newest=None)
    assert sorted(tags(both)) == ["deps-a", "deps-b", "heavy"], "all expired: the shared digest goes too"


def test_the_result_does_not_depend_on_the_input_order() -> None:
    entries = [entry(f"t{i}", i % 3) for i in range(9)]
    first = select_expired(entries, now=NOW, older_than=None, keep_newest=4)
    again = select_expired(list(reversed(entries)), now=NOW, older_than=None, keep_newest=4)
    assert first == again
    assert len(first) == 5


@pytest.mark.parametrize(
    ("older_than", "keep_newest", "wanted"),
    [
        (None, None, "no retention rule given"),
        (None, -1, "keep-newest -1 is negative"),
        (timedelta(days=-1), None, "older-than -1 day, 0:00:00 is negative"),
    ],
)
def test_a_missing_or_negative_rule_is_an_error(
    older_than: timedelta | None, keep_newest: int | None, wanted: str
) -> None:
    with pytest.raises(RetentionError) as caught:
        select_expired([entry("a", 1)], now=NOW, older_than=older_than, keep_newest=keep_newest)
    assert str(caught.value) == wanted


@pytest.mark.parametrize(
    ("label", "wanted"),
    [
        ("2026-11-23T16:40:00Z", datetime(2026, 11, 23, 16, 40, tzinfo=UTC)),
        ("2026-11-23T17:40:00+01:00", datetime(2026, 11, 23, 16, 40, tzinfo=UTC)),
        ("2026-11-23T16:40:00.123456Z", datetime(2026, 11, 23, 16, 40, 0, 123456, tzinfo=UTC)),
        ("2026-11-23T16:40:00", datetime(2026, 11, 23, 16, 40, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1764000000, None),
    ],
)
def test_parse_created(label: object, wanted: datetime | None) -> None:
    assert parse_created(label) == wanted


def test_the_report_lines_say_what_went_and_how_storage_is_reclaimed() -> None:
    shared = "sha256:" + "5" * 64
    deleted = (entry("deps-a", 3, digest=shared), entry("deps-b", 3, digest=shared), entry("heavy-c", None))
    report = PruneReport("127.0.0.1:5000/acme", kept=4, deleted=deleted, dry_run=False)
    lines = report.lines()
    assert lines[0] == "cache 127.0.0.1:5000/acme: deleted 3 tags (2 images), kept 4"
    assert lines[1] == f"  deleted {REPO}:deps-a  sha256:555555555555  created 2026-11-20T12:00:00Z"
    assert lines[3].endswith("created unknown")
    assert "docker-registry garbage-collect" in lines[-1]
    dry = PruneReport("acme", kept=4, deleted=deleted[:1], dry_run=True).lines()
    assert dry[0] == "cache acme: would delete 1 tag (1 image), kept 4"
    assert len(dry) == 2, "a dry run reclaims nothing, so no garbage-collection line"
