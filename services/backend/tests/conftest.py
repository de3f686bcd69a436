"""Shared fixtures: a model trained once per session into a temporary directory,
and the API wired to an in-memory store (no PostgreSQL, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app, get_store
from app.storage import InMemoryStore
from app.train import main as train_main


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.pt"
    assert train_main(["--out", str(out)]) == 0
    return out


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def client(model_path: Path, store: InMemoryStore) -> Iterator[TestClient]:
    app = create_app(Settings(model_path=model_path, database_url=None))
    app.dependency_overrides[get_store] = lambda: store
    with TestClient(app) as test_client:  # runs the lifespan: loads the model
        yield test_client
