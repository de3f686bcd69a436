"""Train the model deterministically and write it to a file.

    python -m app.train --out /opt/model/model.pt

The data set is synthetic and made here (no download): 50 flowers per class
drawn from normal distributions whose means and standard deviations are those of
Fisher's iris data. Same seed and epochs -> the same bytes in the output file,
on the same machine and torch build. Next to the model it writes
``<out>.sha256`` (``sha256sum`` format), and it prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from app.model import IrisMLP, checkpoint_bytes, file_sha256

# Per-class mean and standard deviation of the four measurements (cm) in
# Fisher's iris data: setosa, versicolor, virginica.
CLASS_MEANS = (
    (5.006, 3.428, 1.462, 0.246),
    (5.936, 2.770, 4.260, 1.326),
    (6.588, 2.974, 5.552, 2.026),
)
CLASS_STDS = (
    (0.352, 0.379, 0.174, 0.105),
    (0.516, 0.314, 0.470, 0.198),
    (0.636, 0.322, 0.552, 0.275),
)
DEFAULT_SEED = 1234
DEFAULT_EPOCHS = 300
LEARNING_RATE = 0.05


def make_dataset(
    n_per_class: int = 50, seed: int = DEFAULT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (features [N, 4] float32, labels [N] int64), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for label, (mean, std) in enumerate(zip(CLASS_MEANS, CLASS_STDS, strict=True)):
        noise = torch.randn(n_per_class, len(mean), generator=generator)
        xs.append(torch.tensor(mean) + noise * torch.tensor(std))
        ys.append(torch.full((n_per_class,), label, dtype=torch.int64))
    return torch.cat(xs).clamp_min(0.05), torch.cat(ys)


def train(seed: int = DEFAULT_SEED, epochs: int = DEFAULT_EPOCHS) -> tuple[IrisMLP, float]:
    """Train a fresh model; return it and its accuracy on the training set.

    Leaves the caller's global torch state (RNG, thread count, determinism flag)
    as it found it.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # reductions summed in one fixed order
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x, y = make_dataset(seed=seed)
            model = IrisMLP()
            model.mean.copy_(x.mean(dim=0))
            model.std.copy_(x.std(dim=0))
            optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
            loss_fn = nn.CrossEntropyLoss()
            model.train()
            for _ in range(epochs):  # full batch: no shuffling to seed
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.inference_mode():
                accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)
    return model, accuracy


def write_model(model: IrisMLP, out: Path, meta: dict[str, object]) -> str:
    """Write the checkpoint atomically, plus ``<out>.sha256``; return the sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(checkpoint_bytes(model, meta))
    tmp.replace(out)
    sha = file_sha256(out)
    out.with_name(out.name + ".sha256").write_text(f"{sha}  {out.name}\n")
    return sha


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the model file")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    model, accuracy = train(seed=args.seed, epochs=args.epochs)
    sha = write_model(model, args.out, {"seed": args.seed, "epochs": args.epochs})
    summary = {
        "out": str(args.out),
        "sha256": sha,
        "bytes": args.out.stat().st_size,
        "train_accuracy": round(accuracy, 4),
        "seconds": round(time.perf_counter() - started, 3),
        "torch": torch.__version__,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
