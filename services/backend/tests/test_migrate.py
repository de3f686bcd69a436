from __future__ import annotations

from pathlib import Path

import pytest

from app.config import DEFAULT_MIGRATIONS_DIR
from app.migrate import Migration, MigrationError, parse_filename, pending, plan, read_dir


def test_parse_filename() -> None:
    assert parse_filename("001_init.sql") == (1, "init")
    assert parse_filename("12_add_index_2.sql") == (12, "add_index_2")


@pytest.mark.parametrize(
    "name", ["init.sql", "001-init.sql", "001_init.txt", "001_.sql", "001_Init.sql", "x01_a.sql"]
)
def test_parse_filename_rejects(name: str) -> None:
    with pytest.raises(MigrationError, match="bad migration file name"):
        parse_filename(name)


def test_plan_orders_numerically() -> None:
    files = {"10_ten.sql": "-- 10", "2_two.sql": "-- 2", "001_one.sql": "-- 1"}
    assert [(m.version, m.name) for m in plan(files)] == [(1, "one"), (2, "two"), (10, "ten")]


def test_plan_rejects_duplicate_versions() -> None:
    with pytest.raises(MigrationError, match="two migrations with version 1"):
        plan({"001_a.sql": "", "1_b.sql": ""})


def test_pending_skips_applied_and_detects_changes() -> None:
    one, two, three = plan({"001_a.sql": "A", "002_b.sql": "B", "003_c.sql": "C"})
    assert pending([one, two, three], {}) == [one, two, three]
    assert pending([one, two, three], {1: one.sha256, 2: two.sha256}) == [three]
    assert pending([one, two, three], {m.version: m.sha256 for m in (one, two, three)}) == []
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending([one, two], {1: "0" * 64})
    with pytest.raises(MigrationError, match="no file here"):
        pending([one], {1: one.sha256, 7: "f" * 64})


def test_migration_str_and_checksum() -> None:
    m = Migration(3, "add_x", "SELECT 1;")
    assert str(m) == "003_add_x"
    assert m.sha256 == Migration(3, "renamed", "SELECT 1;").sha256
    assert m.sha256 != Migration(3, "add_x", "SELECT 2;").sha256


def test_read_dir(tmp_path: Path) -> None:
    (tmp_path / "002_b.sql").write_text("B")
    (tmp_path / "001_a.sql").write_text("A")
    (tmp_path / "README.md").write_text("not a migration")
    assert [str(m) for m in read_dir(tmp_path)] == ["001_a", "002_b"]
    with pytest.raises(MigrationError, match="not found"):
        read_dir(tmp_path / "missing")


def test_shipped_migrations_are_well_formed() -> None:
    migrations = read_dir(DEFAULT_MIGRATIONS_DIR)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert str(migrations[0]) == "001_init"
    assert all(m.sql.strip() for m in migrations)
