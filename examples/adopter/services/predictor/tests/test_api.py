from pathlib import Path

import pytest

from app.main import create_app
from app.model import save, train


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    save(train(), path)
    return create_app(path).test_client()


def test_health(client) -> None:
    assert client.get("/health").get_json() == {"status": "ok"}


def test_predicts_a_typical_setosa(client) -> None:
    body = client.post("/predict", json={"features": [5.0, 3.4, 1.5, 0.2]}).get_json()
    assert body["label"] == "setosa"
    assert body["probabilities"]["setosa"] > 0.9


def test_rejects_a_malformed_request(client) -> None:
    assert client.post("/predict", json={"features": [1, 2]}).status_code == 422
    assert client.post("/predict", data="nope").status_code == 422


def test_training_is_deterministic(tmp_path: Path) -> None:
    assert save(train(), tmp_path / "a.joblib") == save(train(), tmp_path / "b.joblib")
