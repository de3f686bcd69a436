"""cargohold: a build orchestrator for monorepos of container images, on Dagger.

The package is the Dagger module (``dagger call``) and the library behind the
CLI (``python pipelines.py``). One module per concern; see docs/architecture.md.
"""

from cargohold.errors import BootstrapError, CargoholdError, ConfigError, EngineError, RegistryError
from cargohold.main import Cargohold

__all__ = [
    "BootstrapError",
    "Cargohold",
    "CargoholdError",
    "ConfigError",
    "EngineError",
    "RegistryError",
]
