"""Integration fixtures: a real engine, the real local registry, the real base images.

``bootstrapped`` runs the same bootstrap as ``./dev ci``. Where no engine
resolves, every integration test is skipped with that reason, and the run's
summary line says so. Nothing here fakes the engine or the registry.
"""

from __future__ import annotations

import os
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
# Where PyTorch's CPU index cannot be reached (these machines), the backend's CPU variant takes
# torch from the shared wheelhouse and torch's own dependencies from PyPI: an index override,
# not a code path.
WHEELHOUSE = ROOT.parent / "shared" / "wheels"
WHEELHOUSE_OVERRIDE = (
    'services.backend.variants.cpu = { find-links = "../shared/wheels", index-url = "https://pypi.org/simple" }'
)


@pytest.fixture(scope="session", autouse=True)
def _torch_from_the_wheelhouse() -> None:
    if "CARGOHOLD_OVERRIDES" not in os.environ and any(WHEELHOUSE.glob("torch-*+cpu-*.whl")):
        os.environ["CARGOHOLD_OVERRIDES"] = WHEELHOUSE_OVERRIDE


@pytest.fixture(scope="session")
def bootstrapped(pytestconfig: pytest.Config) -> BootstrapReport:
    try:
        report = bootstrap()
    except EngineError as e:
        if str(e) != engines.NO_ENGINE_LINE:
            raise
        pytestconfig.stash[NO_ENGINE_KEY] = "no Dagger engine"
        pytest.skip(e.one_line())
    # The session fixture replaces this with the version the engine reports.
    pytestconfig.stash[ENGINE_KEY] = f"{report.engine.version or 'unknown'} ({report.engine.kind.value})"
    return report


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
