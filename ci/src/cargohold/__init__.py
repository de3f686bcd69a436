"""cargohold: a build orchestrator for monorepos of container images, on Dagger.

The package is the Dagger module (``dagger call``) and the library behind the
CLI (``python pipelines.py``). One module per concern; see docs/architecture.md.
The module's main object is ``cargohold.main:Cargohold`` (the ``dagger.mod`` entry
point in ci/pyproject.toml): importing the package does not import the Dagger SDK.
"""

from cargohold.errors import BootstrapError, CargoholdError, ConfigError, EngineError, RegistryError

__all__ = [
    "BootstrapError",
    "CargoholdError",
    "ConfigError",
    "EngineError",
    "RegistryError",
]
