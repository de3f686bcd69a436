"""Where predictions are kept: PostgreSQL in the service, memory in unit tests.

The API depends on the ``Store`` protocol only (through ``app.main.get_store``),
so tests swap in ``InMemoryStore`` with a FastAPI dependency override.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPrediction:
    id: int
    features: list[float]
    label: str
    scores: list[float]
    model: str
    created_at: datetime


class Store(Protocol):
    def add(
        self, features: Sequence[float], label: str, scores: Sequence[float], model_sha256: str
    ) -> StoredPrediction: ...

    def recent(self, limit: int) -> list[StoredPrediction]: ...

    def ping(self) -> bool: ...


class StoreUnavailableError(Exception):
    """The store cannot be reached right now (the API answers 503)."""


class PostgresStore:
    """Predictions in PostgreSQL, through a small psycopg connection pool.

    The pool is opened without waiting, so the service starts (and /health
    answers 503) while the database is still coming up; it connects as soon as
    it can, and checks each connection before lending it out.
    """

    def __init__(self, database_url: str, *, max_size: int = 4, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout,
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": 5},
            name="backend",
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def _connection(
        self, timeout: float | None = None
    ) -> AbstractContextManager[psycopg.Connection]:
        return self.pool.connection(timeout=self.timeout if timeout is None else timeout)

    def add(
        self, features: Sequence[float], label: str, scores: Sequence[float], model_sha256: str
    ) -> StoredPrediction:
        try:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    "INSERT INTO predictions (features, label, scores, model_sha256)"
                    " VALUES (%s, %s, %s, %s)"
                    " RETURNING id, features, label, scores, model_sha256, created_at",
                    (list(features), label, list(scores), model_sha256),
                )
                row = cur.fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailableError(str(exc)) from exc
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns a row
        return _from_row(row)

    def recent(self, limit: int) -> list[StoredPrediction]:
        try:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    "SELECT id, features, label, scores, model_sha256, created_at"
                    " FROM predictions ORDER BY created_at DESC, id DESC LIMIT %s",
                    (limit,),
                )
                rows = cur.fetchall()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailableError(str(exc)) from exc
        return [_from_row(r) for r in rows]

    def ping(self) -> bool:
        try:
            with self._connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.Error) as exc:
            log.warning("database unavailable: %s", str(exc).strip().splitlines()[0])
            return False
        return True


def _from_row(row: dict) -> StoredPrediction:
    return StoredPrediction(
        id=row["id"],
        features=list(row["features"]),
        label=row["label"],
        scores=list(row["scores"]),
        model=row["model_sha256"],
        created_at=row["created_at"],
    )


class UnconfiguredStore:
    """The Store when DATABASE_URL is unset: /health says "unavailable", writes fail."""

    def add(
        self, features: Sequence[float], label: str, scores: Sequence[float], model_sha256: str
    ) -> StoredPrediction:
        raise StoreUnavailableError("no database configured (set DATABASE_URL)")

    def recent(self, limit: int) -> list[StoredPrediction]:
        raise StoreUnavailableError("no database configured (set DATABASE_URL)")

    def ping(self) -> bool:
        return False


class InMemoryStore:
    """A Store in a list: for unit tests and local experiments, never production."""

    def __init__(self) -> None:
        self._rows: list[StoredPrediction] = []
        self._lock = threading.Lock()
        self.available = True

    def add(
        self, features: Sequence[float], label: str, scores: Sequence[float], model_sha256: str
    ) -> StoredPrediction:
        if not self.available:
            raise StoreUnavailableError("in-memory store switched off")
        with self._lock:
            row = StoredPrediction(
                id=len(self._rows) + 1,
                features=list(features),
                label=label,
                scores=list(scores),
                model=model_sha256,
                created_at=datetime.now(UTC),
            )
            self._rows.append(row)
        return row

    def recent(self, limit: int) -> list[StoredPrediction]:
        if not self.available:
            raise StoreUnavailableError("in-memory store switched off")
        with self._lock:
            return list(reversed(self._rows[-limit:])) if limit > 0 else []

    def ping(self) -> bool:
        return self.available
