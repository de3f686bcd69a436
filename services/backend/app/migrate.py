"""Apply ``migrations/NNN_name.sql`` files in order, each at most once.

    python -m app.migrate [--database-url URL] [--dir DIR] [--wait SECONDS]

Applied versions are recorded in ``schema_migrations`` with the file's sha256.
Running it again applies only what is new; a migration file changed after it
was applied is an error. Each file runs in its own transaction together with
its ``schema_migrations`` row, and a PostgreSQL advisory lock keeps two
replicas starting at once (``MIGRATE_ON_START=1``) from racing.

The planning functions (``parse_filename``, ``plan``, ``pending``) are pure and
tested without a database.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.config import Settings

log = logging.getLogger("app.migrate")  # not __main__ under python -m

FILENAME = re.compile(r"^(?P<version>\d+)_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")
# An arbitrary, fixed key for pg_advisory_lock: "cargohold-demo migrations".
LOCK_KEY = 7_201_554_113

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migration files, or the database's record of them, are inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def __str__(self) -> str:
        return f"{self.version:03d}_{self.name}"


def parse_filename(filename: str) -> tuple[int, str]:
    """``"001_init.sql"`` -> ``(1, "init")``; anything else is a MigrationError."""
    match = FILENAME.match(filename)
    if match is None:
        raise MigrationError(
            f"bad migration file name {filename!r}: expected NNN_lowercase_name.sql"
        )
    return int(match["version"]), match["name"]


def plan(files: Mapping[str, str]) -> list[Migration]:
    """Order migrations (``{filename: sql}``) by numeric version; reject duplicates.

    Ordering is numeric, so ``2_x.sql`` comes before ``10_y.sql`` whatever the
    zero padding.
    """
    by_version: dict[int, Migration] = {}
    for filename, sql in files.items():
        version, name = parse_filename(filename)
        if version in by_version:
            raise MigrationError(
                f"two migrations with version {version}: {by_version[version]} and {filename}"
            )
        by_version[version] = Migration(version, name, sql)
    return [by_version[v] for v in sorted(by_version)]


def pending(migrations: Iterable[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations still to apply, given ``{version: sha256}`` already applied.

    Raises if an applied migration's file has changed since, or if the database
    has a version that no file explains (a newer image's schema, or a deleted file).
    """
    migrations = list(migrations)
    known = {m.version for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(f"database has migrations with no file here: {unknown}")
    todo = []
    for m in migrations:
        if m.version not in applied:
            todo.append(m)
        elif applied[m.version] != m.sha256:
            raise MigrationError(f"migration {m} was changed after it was applied")
    return todo


def read_dir(directory: Path) -> list[Migration]:
    """All ``*.sql`` files in ``directory``, planned."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    return plan({p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.sql")})


def connect(database_url: str, wait_seconds: float = 0.0) -> psycopg.Connection:
    """Connect in autocommit mode, retrying for up to ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return psycopg.connect(database_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("database not ready (%s); retrying", str(exc).strip().splitlines()[0])
            time.sleep(1.0)


def apply(conn: psycopg.Connection, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply what ``conn``'s database lacks; return the migrations applied."""
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(CREATE_TABLE)
        rows = conn.execute("SELECT version, sha256 FROM schema_migrations").fetchall()
        todo = pending(migrations, dict(rows))
        for m in todo:
            log.info("applying migration %s", m)
            with conn.transaction():
                conn.execute(m.sql)  # no parameters: psycopg sends it as is
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.sha256),
                )
        return todo
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def migrate(database_url: str, directory: Path, wait_seconds: float = 0.0) -> list[Migration]:
    migrations = read_dir(directory)
    with connect(database_url, wait_seconds) as conn:
        return apply(conn, migrations)


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m app.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url", default=settings.database_url, help="default: $DATABASE_URL"
    )
    parser.add_argument("--dir", type=Path, default=settings.migrations_dir)
    parser.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for the database to come up"
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no database: set DATABASE_URL or pass --database-url")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        applied = migrate(args.database_url, args.dir, args.wait)
    except (MigrationError, psycopg.Error) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(map(str, applied)) or "nothing (up to date)"
    print(f"migrate: applied {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
