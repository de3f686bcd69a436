"""The classifier: a deterministic synthetic data set, training, and loading.

Three classes of four measurements each, drawn with a fixed seed, so the same
code and library versions give the same model, and the same predictions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

LABELS = ("setosa", "versicolor", "virginica")
CLASS_MEANS = ((5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0))
CLASS_STDS = ((0.35, 0.38, 0.17, 0.1), (0.52, 0.31, 0.47, 0.2), (0.64, 0.32, 0.55, 0.27))
SEED = 1234


def dataset(n_per_class: int = 50, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 4) and labels (n,), the same for the same seed."""
    rng = np.random.default_rng(seed)
    xs = [
        rng.normal(mean, std, size=(n_per_class, 4))
        for mean, std in zip(CLASS_MEANS, CLASS_STDS, strict=True)
    ]
    ys = [np.full(n_per_class, label) for label in range(len(LABELS))]
    return np.vstack(xs), np.concatenate(ys)


def train(seed: int = SEED) -> Pipeline:
    """Scale, then a logistic regression; deterministic (lbfgs, fixed data)."""
    features, labels = dataset(seed=seed)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, labels)


def save(model: Pipeline, path: Path) -> str:
    """Write the model; its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(path: Path) -> Pipeline:
    """The model written by ``save`` (built into the image; never downloaded)."""
    return joblib.load(path)


def predict(model: Pipeline, features: list[float]) -> dict[str, object]:
    """The label and the probability of each class for one flower."""
    probabilities = model.predict_proba(np.asarray([features], dtype=float))[0]
    best = int(np.argmax(probabilities))
    return {
        "label": LABELS[best],
        "probabilities": dict(zip(LABELS, map(float, probabilities), strict=True)),
    }
