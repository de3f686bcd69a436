"""Which registry failures are retried, and how long to wait (pure)."""

from __future__ import annotations

import pytest

from cargohold.registry import MAX_ATTEMPTS, Credentials, Registry, retry_delay


@pytest.mark.parametrize("status", [401, 403, 404, 400, 405])
def test_permanent_failures_are_not_retried(status: int) -> None:
    assert retry_delay(1, status) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, None])
def test_transient_failures_back_off_and_stop(status: int | None) -> None:
    delays = [retry_delay(attempt, status) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert delays[:-1] == [0.5, 1.0, 2.0]
    assert delays[-1] is None  # bounded


def test_retry_after_is_honoured_and_capped() -> None:
    assert retry_delay(1, 429, "3") == 3.0
    assert retry_delay(1, 503, "600") == 30.0
    assert retry_delay(1, 429, "Wed, 21 Oct 2026 07:28:00 GMT") == 0.5  # a date: fall back to back-off


def test_a_token_never_shows_in_a_repr() -> None:
    registry = Registry("ghcr.io", credentials=Credentials("bot", "ghp_canary_token_123"))
    assert "ghp_canary" not in repr(registry)
    assert "ghp_canary" not in repr(Credentials("bot", "ghp_canary_token_123"))
