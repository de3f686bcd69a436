"""Train the model and write it: ``python -m app.train --out /opt/model/model.joblib``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.model import dataset, save, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    model = train()
    digest = save(model, args.out)
    features, labels = dataset()
    accuracy = float((model.predict(features) == labels).mean())
    print(json.dumps({"out": str(args.out), "sha256": digest, "train_accuracy": accuracy}))


if __name__ == "__main__":
    main()
