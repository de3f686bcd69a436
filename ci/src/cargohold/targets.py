"""Which images a command makes: the build targets named on the command line (pure, no engine)."""

from __future__ import annotations

from cargohold.config import Config
from cargohold.keys import BuildTarget


def targets(config: Config, service: str | None, variant: str | None) -> list[BuildTarget]:
    """The images a build makes: one service or all, one variant or each service's default."""
    names = [service] if service else list(config.services)
    return [BuildTarget(name, config.service(name).variant(variant)[0]) for name in names]
