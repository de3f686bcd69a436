"""One computation per key at a time, remembered: what two threads asking for the same thing share.

``Inflight.get(key, compute)`` returns the remembered value, else waits for the
thread already computing it, else computes it in the calling thread. A
computation that fails is not remembered and its waiters try again themselves:
a failed background prefetch never fails the report that was waiting for it.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Failed(enum.Enum):
    """What a failed computation hands its waiters: the failure is the computing thread's to raise."""

    FAILED = "failed"


class Inflight(Generic[K, V]):
    """Values by key, each computed by one thread while the others wait; up to ``limit`` remembered."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._done: dict[K, V] = {}
        self._pending: dict[K, Future[V | _Failed]] = {}

    def get(self, key: K, compute: Callable[[], V]) -> tuple[V, bool]:
        """The value of ``key`` and whether this call computed it; ``compute``'s exception when it did and failed."""
        while True:
            with self._lock:
                if key in self._done:
                    return self._done[key], False
                waiting = self._pending.get(key)
                if waiting is None:
                    mine = self._pending[key] = Future()
            if waiting is None:
                return self._compute(key, compute, mine), True
            if not isinstance(value := waiting.result(), _Failed):
                return value, False
            # the other thread failed: the next turn computes it here (or waits for a newer attempt)

    def _compute(self, key: K, compute: Callable[[], V], mine: Future[V | _Failed]) -> V:
        value: V | _Failed = _Failed.FAILED
        try:
            value = compute()
            return value
        finally:
            with self._lock:
                del self._pending[key]
                if not isinstance(value, _Failed):
                    self._remember(key, value)
            mine.set_result(value)

    def _remember(self, key: K, value: V) -> None:
        if len(self._done) >= self._limit:
            self._done.popitem()  # the newest: the oldest are the ones most shared (base layers)
        self._done[key] = value

    def clear(self) -> None:
        """Forget every remembered value (computations under way finish and are remembered)."""
        with self._lock:
            self._done.clear()
