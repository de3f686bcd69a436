"""The model: a 4 -> 8 -> 3 MLP that classifies iris-like flower measurements.

The checkpoint is one file written by ``python -m app.train``: a ``torch.save``
of a plain dict (state_dict plus metadata), loaded with ``weights_only=True``
so loading never runs code from the file. The service loads it from
``MODEL_PATH`` at start-up and never downloads anything.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "cargohold-demo-iris/1"
FEATURES: tuple[str, ...] = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABELS: tuple[str, ...] = ("setosa", "versicolor", "virginica")
HIDDEN = 8


class IrisMLP(nn.Module):
    """Standardise the four inputs, then Linear(4, 8) -> ReLU -> Linear(8, 3).

    ``forward`` returns logits; the standardisation constants are buffers, so
    they travel in the state_dict with the weights.
    """

    def __init__(
        self, n_features: int = len(FEATURES), hidden: int = HIDDEN, n_classes: int = len(LABELS)
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_bytes(model: IrisMLP, extra: dict[str, Any] | None = None) -> bytes:
    """Serialise ``model`` and its metadata; the same model gives the same bytes."""
    checkpoint = {
        "format": FORMAT,
        "features": list(FEATURES),
        "labels": list(LABELS),
        "hidden": model.net[0].out_features,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "meta": dict(extra or {}),
    }
    # Serialise to memory first: torch.save names the archive after the file it
    # writes to, and the bytes must not depend on the output path.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: list[float]


class LoadedModel:
    """A checkpoint loaded for inference."""

    def __init__(self, module: IrisMLP, labels: Sequence[str], sha256: str) -> None:
        self.module = module.eval()
        self.labels = tuple(labels)
        self.sha256 = sha256

    @property
    def version(self) -> str:
        """The short form of the file's sha256, as /health reports it."""
        return self.sha256[:12]

    def predict(self, features: Sequence[float]) -> Prediction:
        return self.predict_many([features])[0]

    def predict_many(self, rows: Sequence[Sequence[float]]) -> list[Prediction]:
        x = torch.tensor([list(map(float, r)) for r in rows], dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != len(FEATURES):
            raise ValueError(
                f"expected rows of {len(FEATURES)} features, got shape {tuple(x.shape)}"
            )
        with torch.inference_mode():
            probs = torch.softmax(self.module(x), dim=1)
        return [
            Prediction(label=self.labels[int(p.argmax())], scores=[round(float(s), 6) for s in p])
            for p in probs
        ]


def load_model(path: Path) -> LoadedModel:
    """Load a checkpoint written by ``app.train``; raise if it is missing or not ours."""
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (set MODEL_PATH, or train one)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint")
    labels = checkpoint["labels"]
    module = IrisMLP(len(checkpoint["features"]), int(checkpoint["hidden"]), len(labels))
    module.load_state_dict(checkpoint["state_dict"])
    return LoadedModel(module, labels, file_sha256(path))
