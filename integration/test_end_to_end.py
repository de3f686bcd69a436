"""End-to-end tests of the demo monorepo, run by cargohold's `ci` in a test container.

The backend and frontend images that `ci` built (or reused) run as services
next to PostgreSQL; this container reaches them by name. The URLs come from
the environment; the database URL is a secret.
"""

from __future__ import annotations

import os
import uuid

import httpx
import psycopg
import pytest

BACKEND = os.environ["BACKEND_URL"]
FRONTEND = os.environ["FRONTEND_URL"]


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=10.0) as c:
        yield c


def test_backend_is_healthy_with_its_model_and_database(client: httpx.Client) -> None:
    health = client.get(f"{BACKEND}/health").json()
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert len(health["model"]) == 12


def test_a_prediction_is_written_through_the_api_and_read_back(client: httpx.Client) -> None:
    features = [5.0 + uuid.uuid4().int % 100 / 100, 3.4, 1.5, 0.2]
    made = client.post(f"{BACKEND}/predict", json={"features": features})
    assert made.status_code == 200, made.text
    stored = client.get(f"{BACKEND}/predictions", params={"limit": 20}).json()
    row = next((p for p in stored if p["id"] == made.json()["id"]), None)
    assert row is not None, f"prediction {made.json()['id']} not read back: {stored}"
    assert row["label"] == made.json()["label"]


def test_the_prediction_is_in_postgresql() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        count = conn.execute("select count(*) from predictions").fetchone()
    assert count is not None
    assert count[0] >= 1


def test_the_database_files_live_on_tmpfs() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        data_dir = conn.execute("show data_directory").fetchone()[0]
        mounts = conn.execute("select pg_read_file('/proc/self/mounts')").fetchone()[0]
    types = {line.split()[1]: line.split()[2] for line in mounts.splitlines()}
    assert types.get(data_dir) == "tmpfs", f"{data_dir} is mounted as {types.get(data_dir)!r}"


def test_the_frontend_serves_its_page_and_proxies_the_api(client: httpx.Client) -> None:
    page = client.get(f"{FRONTEND}/")
    assert page.status_code == 200
    assert "<script" in page.text
    assert client.get(f"{FRONTEND}/health").status_code == 200
    assert client.get(f"{FRONTEND}/api/health").json()["status"] == "ok"
