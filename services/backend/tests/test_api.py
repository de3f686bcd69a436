from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.model import LABELS, file_sha256
from app.storage import InMemoryStore

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.6, 2.2]


def test_health_ok(client: TestClient, model_path: Path) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": file_sha256(model_path)[:12],
        "database": "ok",
    }


def test_health_503_when_database_is_down(client: TestClient, store: InMemoryStore) -> None:
    store.available = False
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.json()["status"] == "degraded"


def test_health_without_database_url(model_path: Path) -> None:
    with TestClient(create_app(Settings(model_path=model_path))) as test_client:
        response = test_client.get("/health")
        assert response.status_code == 503
        assert response.json()["database"] == "unavailable"
        assert test_client.post("/predict", json={"features": SETOSA}).status_code == 503


def test_startup_fails_without_model(tmp_path: Path) -> None:
    app = create_app(Settings(model_path=tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError), TestClient(app):
        pass


def test_predict_stores_and_returns(client: TestClient, store: InMemoryStore) -> None:
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 1
    assert body["label"] == "setosa"
    assert body["labels"] == list(LABELS)
    assert len(body["scores"]) == 3
    assert sum(body["scores"]) == pytest.approx(1.0, abs=1e-5)
    [row] = store.recent(10)
    assert row.features == SETOSA
    assert row.label == "setosa"


def test_predictions_newest_first_with_limit(client: TestClient) -> None:
    assert client.get("/predictions").json() == []
    ids = [client.post("/predict", json={"features": f}).json()["id"] for f in (SETOSA, VIRGINICA)]
    response = client.get("/predictions")
    assert response.status_code == 200
    rows = response.json()
    assert [r["id"] for r in rows] == ids[::-1]
    assert rows[0]["label"] == "virginica"
    assert rows[0]["features"] == VIRGINICA
    assert {"id", "features", "label", "scores", "model", "created_at"} <= set(rows[0])
    assert [r["id"] for r in client.get("/predictions", params={"limit": 1}).json()] == [ids[1]]


@pytest.mark.parametrize(
    "payload",
    [
        {"features": [1.0, 2.0, 3.0]},
        {"features": [1.0, 2.0, 3.0, 4.0, 5.0]},
        {"features": []},
        {"features": ["a", 2.0, 3.0, 4.0]},
        {"features": [-1.0, 2.0, 3.0, 4.0]},
        {"features": [1e9, 2.0, 3.0, 4.0]},
        {"features": None},
        {},
        {"features": SETOSA, "extra": 1},
    ],
)
def test_predict_validation(client: TestClient, store: InMemoryStore, payload: object) -> None:
    response = client.post("/predict", json=payload)
    assert response.status_code == 422
    assert store.recent(10) == []


def test_predict_rejects_nan_and_infinity(client: TestClient) -> None:
    for token in ("NaN", "Infinity"):
        body = '{"features": [1.0, 2.0, 3.0, %s]}' % token  # noqa: UP031 - not valid JSON
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, token


@pytest.mark.parametrize("limit", [0, -1, 101, "x"])
def test_predictions_limit_validation(client: TestClient, limit: object) -> None:
    assert client.get("/predictions", params={"limit": limit}).status_code == 422


def test_predict_503_when_database_is_down(client: TestClient, store: InMemoryStore) -> None:
    store.available = False
    response = client.post("/predict", json={"features": SETOSA})
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}
    assert client.get("/predictions").status_code == 503


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "MODEL_PATH": "/m/x.pt",
            "DATABASE_URL": "postgresql://u:p@db:5432/app",
            "MIGRATE_ON_START": "1",
        }
    )
    assert settings.model_path == Path("/m/x.pt")
    assert settings.database_url == "postgresql://u:p@db:5432/app"
    assert settings.migrate_on_start is True
    defaults = Settings.from_env({})
    assert defaults.model_path == Path("/opt/model/model.pt")
    assert defaults.database_url is None
    assert defaults.migrate_on_start is False
    assert (defaults.migrations_dir / "001_init.sql").is_file()
