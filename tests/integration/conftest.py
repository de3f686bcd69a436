"""Integration fixtures: a real engine, the real local registry, the real base images.

``bootstrapped`` runs the same bootstrap as ``./dev ci``. Where no engine
resolves, every integration test is skipped with that reason, and the run's
summary line says so. Nothing here fakes the engine or the registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from cargohold import engine as engines
from cargohold.bootstrap import BootstrapReport, bootstrap
from cargohold.config import Config, load_config
from cargohold.errors import EngineError
from cargohold.local_registry import local_registry_address
from tests.conftest import ENGINE_KEY, NO_ENGINE_KEY

ROOT = Path(__file__).parents[2]
TEST_NAMESPACE = "cargohold-tests"


@pytest.fixture(scope="session")
def bootstrapped(pytestconfig: pytest.Config) -> BootstrapReport:
    try:
        return bootstrap()
    except EngineError as e:
        if str(e) != engines.NO_ENGINE_LINE:
            raise
        pytestconfig.stash[NO_ENGINE_KEY] = "no Dagger engine"
        pytest.skip(e.one_line())


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dagger_session(bootstrapped: BootstrapReport, pytestconfig: pytest.Config) -> AsyncIterator[str]:
    """One Dagger session for the whole run; yields the engine version."""
    async with engines.session(bootstrapped.engine) as version:
        pytestconfig.stash[ENGINE_KEY] = f"{version} ({bootstrapped.engine.kind.value})"
        yield version


@pytest.fixture(scope="session")
def config(bootstrapped: BootstrapReport) -> Config:
    """The repository's configuration, with the bootstrap's image overrides applied."""
    return load_config(ROOT / "cargohold.toml")


@pytest.fixture(scope="session")
def registry_namespace(bootstrapped: BootstrapReport) -> str:
    """Where tests publish: the local registry, under a namespace of their own."""
    return f"{local_registry_address()}/{TEST_NAMESPACE}"
