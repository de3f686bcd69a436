"""Issue 9: another repository adopts cargohold from configuration alone.

``examples/adopter`` is a repository of its own: a ``cargohold.toml`` and one
Flask + scikit-learn service, with nothing of this repository's services. The
real command line runs ``ci`` on it (lint, unit tests, build with the model
trained at build time); then the image it pushed runs as a Dagger service and
answers ``/health`` and ``/predict``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from dagger import dag

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from cargohold.reference import Reference
from cargohold.registry import Registry
from tests.integration.workspace import ROOT, cache_outcomes, cli, runner_env

CONFIG = ROOT / "examples" / "adopter" / "cargohold.toml"


@pytest.fixture(scope="module")
def namespace(bootstrapped: BootstrapReport) -> str:
    return f"{local_registry_address()}/adopter-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def ci_run(namespace: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``pipelines.py --config examples/adopter/cargohold.toml ci``; its stdout and the run's folder."""
    out = tmp_path_factory.mktemp("adopter")
    env = runner_env(namespace, CARGOHOLD_OVERRIDES="")  # nothing of this repository's own services
    done = cli(CONFIG, env, "ci", "--junit", str(out / "junit.xml"), "--cache-report", str(out / "cache.json"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout, out


def test_ci_lints_tests_and_builds_the_third_service(ci_run: tuple[str, Path]) -> None:
    stdout, _ = ci_run
    for task in ("lint", "test", "build"):
        assert any(line.split()[:2] == ["PASSED", f"predictor:{task}"] for line in stdout.splitlines()), stdout
    assert "ci: 3 passed, 0 failed" in stdout, stdout


def test_every_stage_ran_and_the_image_is_in_the_registry(ci_run: tuple[str, Path], namespace: str) -> None:
    _, out = ci_run
    outcomes = cache_outcomes(out / "cache.json")
    assert outcomes[("predictor", "dependencies")] in {"built", "hit"}, outcomes
    assert outcomes[("predictor", "bake")] in {"built", "hit"}, outcomes
    assert outcomes[("predictor", "runtime")] == "built", outcomes
    repo = Reference.parse(f"{namespace}/predictor").repository
    assert Registry(local_registry_address()).manifest_digest(repo, "default") is not None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def answers(ci_run: tuple[str, Path], namespace: str, dagger_session: str) -> dict[str, str]:
    """The pushed image, run as a service: what /health and /predict answer."""
    image = f"{namespace}/predictor:default"
    service = dag.container().from_(image).with_exposed_port(8000).as_service(use_entrypoint=True)
    probe = (
        "import json, urllib.request as u\n"
        "health = u.urlopen('http://predictor:8000/health', timeout=30).read().decode()\n"
        "body = json.dumps({'features': [6.7, 3.0, 5.6, 2.1]}).encode()\n"
        "req = u.Request('http://predictor:8000/predict', body, {'Content-Type': 'application/json'})\n"
        "print(json.dumps({'health': health, 'predict': u.urlopen(req, timeout=30).read().decode()}))\n"
    )
    out = await (
        dag.container()
        .from_(image)  # its own Python: the runtime image has no curl, and needs none
        .with_service_binding("predictor", service)
        .with_entrypoint([])
        .with_exec(["python", "-c", probe])
        .stdout()
    )
    answers: dict[str, str] = json.loads(out)
    return answers


@pytest.mark.asyncio(loop_scope="session")
async def test_the_image_serves_health_and_predictions_from_the_baked_model(answers: dict[str, str]) -> None:
    assert json.loads(answers["health"]) == {"status": "ok"}
    prediction = json.loads(answers["predict"])
    assert prediction["label"] == "virginica", prediction
    assert prediction["probabilities"]["virginica"] > 0.5, prediction
