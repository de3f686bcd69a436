"""Settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_PATH = "/opt/model/model.pt"
DEFAULT_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """What the service needs to know about its surroundings."""

    model_path: Path = Path(DEFAULT_MODEL_PATH)
    database_url: str | None = None
    migrate_on_start: bool = False
    migrations_dir: Path = DEFAULT_MIGRATIONS_DIR
    # How long start-up migrations wait for the database to accept connections.
    migrate_wait_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        return cls(
            model_path=Path(env.get("MODEL_PATH") or DEFAULT_MODEL_PATH),
            database_url=env.get("DATABASE_URL") or None,
            migrate_on_start=env.get("MIGRATE_ON_START", "").strip().lower() in _TRUE,
            migrations_dir=Path(env.get("MIGRATIONS_DIR") or DEFAULT_MIGRATIONS_DIR),
            migrate_wait_seconds=float(env.get("MIGRATE_WAIT_SECONDS") or 30.0),
        )
