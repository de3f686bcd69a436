"""One computation per key: a second thread waits for the first, a failure is not shared."""

from __future__ import annotations

import threading

import pytest

from cargohold.inflight import Inflight

WAIT = 10.0  # seconds; a test that waits this long has failed


def test_a_value_is_computed_once_and_remembered() -> None:
    calls: list[str] = []
    memo = Inflight[str, int](limit=8)
    assert memo.get("a", lambda: calls.append("a") or 1) == (1, True)
    assert memo.get("a", lambda: calls.append("again") or 2) == (1, False)
    assert calls == ["a"]
    memo.clear()
    assert memo.get("a", lambda: 3) == (3, True), "wanted a cleared value computed again"


def test_a_second_thread_waits_for_the_computation_under_way() -> None:
    memo = Inflight[str, str](limit=8)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        assert release.wait(WAIT)
        return "listing"

    results: list[tuple[str, bool]] = []
    first = threading.Thread(target=lambda: results.append(memo.get("layer", slow)))
    first.start()
    assert started.wait(WAIT)
    second = threading.Thread(target=lambda: results.append(memo.get("layer", lambda: calls.append("twice") or "")))
    second.start()
    second.join(0.2)
    assert second.is_alive(), "wanted the second caller waiting for the first, not computing"
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert calls == ["slow"], "wanted one computation"
    assert sorted(results) == [("listing", False), ("listing", True)]


def test_a_failed_computation_is_not_shared_the_waiter_computes_itself() -> None:
    memo = Inflight[str, str](limit=8)
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def failing() -> str:
        started.set()
        assert release.wait(WAIT)
        raise OSError("the prefetch lost its connection")

    def prefetch() -> None:
        try:
            memo.get("layer", failing)
        except OSError as e:
            errors.append(e)

    background = threading.Thread(target=prefetch)
    background.start()
    assert started.wait(WAIT)
    results: list[tuple[str, bool]] = []
    report = threading.Thread(target=lambda: results.append(memo.get("layer", lambda: "downloaded")))
    report.start()
    release.set()
    background.join(WAIT)
    report.join(WAIT)
    assert [str(e) for e in errors] == ["the prefetch lost its connection"], "wanted the failure raised where it ran"
    assert results == [("downloaded", True)], "wanted the waiting report to compute it itself"
    assert memo.get("layer", lambda: "again") == ("downloaded", False)


def test_a_failure_in_the_calling_thread_is_raised_and_not_remembered() -> None:
    memo = Inflight[str, int](limit=8)

    def broken() -> int:
        raise ValueError("unreadable")

    with pytest.raises(ValueError, match="unreadable"):
        memo.get("k", broken)
    assert memo.get("k", lambda: 7) == (7, True)


def test_beyond_the_limit_the_newest_is_forgotten_and_the_oldest_kept() -> None:
    memo = Inflight[int, int](limit=2)
    for key in (1, 2, 3):
        memo.get(key, lambda key=key: key * 10)  # type: ignore[misc]
    assert memo.get(1, lambda: -1) == (10, False), "wanted the oldest (a shared base layer) kept"
    assert memo.get(3, lambda: -1) == (30, False)
    assert memo.get(2, lambda: -1) == (-1, True), "wanted the one pushed out computed again"
