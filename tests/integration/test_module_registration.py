"""Module mode, as far as this engine allows: registration through the SDK's own path.

``dagger call`` needs the engine's built-in Python SDK content, which only the
official engine image carries; the registration step itself runs here, against
the real engine, and its result is read back from the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport

pytestmark = pytest.mark.asyncio(loop_scope="session")
PROBE = Path(__file__).with_name("module_probe.py")


@pytest.fixture(scope="module")
def api(bootstrapped: BootstrapReport, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    cli = bootstrapped.engine.cli_bin
    if not cli:
        pytest.skip("no dagger CLI binary to run 'dagger run' with")
    env = {
        **os.environ,
        **bootstrapped.engine.client_env(),
        "DAGGER_MAIN_OBJECT": "Cargohold",
        "DAGGER_MODULE_FILE": str(tmp_path_factory.mktemp("module") / "module.json"),
    }
    done = subprocess.run(
        [cli, "run", "-s", sys.executable, str(PROBE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_main_object_and_its_functions_are_registered(api: dict[str, dict]) -> None:
    assert set(api) >= {"Cargohold", "SmokeReport", "BuiltImage"}
    assert set(api["Cargohold"]["functions"]) == {
        "build",
        "check",
        "engineVersion",
        "pinnedEngineVersion",
        "plan",
        "publish",
        "smoke",
    }
    assert "monorepo" in api["Cargohold"]["description"]


async def test_every_function_and_argument_is_documented(api: dict[str, dict]) -> None:
    for name, fn in api["Cargohold"]["functions"].items():
        assert fn["description"], f"function {name} has no description"
        for arg, doc in fn["args"].items():
            assert doc, f"argument {name}.{arg} has no Doc"
    smoke_args = api["Cargohold"]["functions"]["smoke"]["args"]
    assert list(smoke_args) == ["pythonImage", "registry", "caBundle", "package"]
    assert "TLS proxy" in smoke_args["caBundle"]
    build_args = api["Cargohold"]["functions"]["build"]["args"]
    assert list(build_args) == ["source", "registry", "service", "variant", "overrides", "wheelhouse", "caBundle"]
