"""The HTTP API: ``GET /health`` and ``POST /predict`` with ``{"features": [4 numbers]}``."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, jsonify, request

from app.model import load, predict

N_FEATURES = 4


def create_app(model_path: Path | None = None) -> Flask:
    """The app, with the model loaded once at start-up."""
    app = Flask(__name__)
    model = load(model_path or Path(os.environ.get("MODEL_PATH", "/opt/model/model.joblib")))

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.post("/predict")
    def predict_one():
        body = request.get_json(silent=True) or {}
        features = body.get("features")
        valid = isinstance(features, list) and len(features) == N_FEATURES
        if not valid or not all(isinstance(x, int | float) for x in features):
            return jsonify(error=f"send {{'features': [{N_FEATURES} numbers]}}"), 422
        return jsonify(predict(model, features))

    return app


def __getattr__(name: str) -> Flask:
    """``app.main:app`` for gunicorn, made on first use (tests call create_app themselves)."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
