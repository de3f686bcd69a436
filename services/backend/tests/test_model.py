from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.model import FEATURES, LABELS, IrisMLP, file_sha256, load_model
from app.train import CLASS_MEANS, make_dataset, train, write_model


def test_dataset_is_deterministic_and_balanced() -> None:
    x1, y1 = make_dataset(seed=7)
    x2, y2 = make_dataset(seed=7)
    assert torch.equal(x1, x2)
    assert torch.equal(y1, y2)
    assert x1.shape == (150, len(FEATURES))
    assert torch.bincount(y1).tolist() == [50, 50, 50]
    assert not torch.equal(x1, make_dataset(seed=8)[0])


def test_training_twice_gives_identical_weights_and_files(tmp_path: Path) -> None:
    model_a, acc_a = train(epochs=50)
    model_b, acc_b = train(epochs=50)
    assert acc_a == acc_b
    for (name, a), (_, b) in zip(
        model_a.state_dict().items(), model_b.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    sha_a = write_model(model_a, tmp_path / "a" / "model.pt", {"epochs": 50})
    sha_b = write_model(model_b, tmp_path / "b" / "other-name.pt", {"epochs": 50})
    assert sha_a == sha_b  # bytes do not depend on the output path either
    assert (tmp_path / "a" / "model.pt.sha256").read_text() == f"{sha_a}  model.pt\n"


def test_training_leaves_global_torch_state_alone() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    threads = torch.get_num_threads()
    train(epochs=1)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_session_model_matches_a_fresh_training(model_path: Path, tmp_path: Path) -> None:
    model, _ = train()
    assert write_model(model, tmp_path / "model.pt", {"seed": 1234, "epochs": 300}) == (
        file_sha256(model_path)
    )


def test_output_shape_and_labels(model_path: Path) -> None:
    loaded = load_model(model_path)
    assert loaded.labels == LABELS
    assert loaded.sha256 == file_sha256(model_path)
    assert len(loaded.version) == 12
    logits = loaded.module(torch.zeros(5, len(FEATURES)))
    assert logits.shape == (5, len(LABELS))
    predictions = loaded.predict_many([[5.0, 3.4, 1.5, 0.2], [6.5, 3.0, 5.5, 2.0]])
    for p in predictions:
        assert p.label in LABELS
        assert len(p.scores) == len(LABELS)
        assert sum(p.scores) == pytest.approx(1.0, abs=1e-5)
        assert all(0.0 <= s <= 1.0 for s in p.scores)


def test_model_learned_the_classes(model_path: Path) -> None:
    loaded = load_model(model_path)
    # The centre of each class is classified as that class.
    assert [loaded.predict(mean).label for mean in CLASS_MEANS] == list(LABELS)
    x, y = make_dataset(seed=42)  # data the model never saw
    labels = [p.label for p in loaded.predict_many(x.tolist())]
    accuracy = sum(lbl == LABELS[i] for lbl, i in zip(labels, y.tolist(), strict=True)) / len(y)
    assert accuracy > 0.9


def test_predict_is_deterministic(model_path: Path) -> None:
    a = load_model(model_path).predict([5.9, 3.0, 4.2, 1.3])
    b = load_model(model_path).predict([5.9, 3.0, 4.2, 1.3])
    assert a == b


def test_predict_rejects_wrong_feature_count(model_path: Path) -> None:
    with pytest.raises(ValueError, match="4 features"):
        load_model(model_path).predict([1.0, 2.0, 3.0])


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MODEL_PATH"):
        load_model(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match="not a"):
        load_model(other)


def test_module_standardises_its_inputs() -> None:
    module = IrisMLP()
    assert set(module.state_dict()) >= {"mean", "std"}
