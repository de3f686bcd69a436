"""Issue 4 on the real engine: the runtime images of both services, built by the stage recipes.

The images are built once per test module through the same function the CLI
and ``dagger call build`` use, pushed to the real local registry, then run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio
from dagger import dag

from cargohold.build import build_all, jobs_for
from cargohold.config import Config
from cargohold.host_inputs import host_services, keys_for, service_inputs
from cargohold.image_checks import image_facts
from cargohold.keys import BuildTarget
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.reuse import PushedImage
from cargohold.trust import bundle_file, read_bundle

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).parents[2]
TARGETS = [BuildTarget("backend", "cpu"), BuildTarget("frontend", "default")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def images(dagger_session: str, config: Config, registry_namespace: str) -> dict[str, PushedImage]:
    hosts = host_services(config, ROOT, TARGETS)
    bundle = bundle_file(read_bundle(config.ca_bundle_paths()))
    inputs, keys = service_inputs(config, hosts), keys_for(config, hosts)
    run = await build_all(jobs_for(config, TARGETS, inputs, keys, registry=registry_namespace, ca_bundle=bundle))
    return {image.service: image for image in run.images}


def _image_config(reference: str) -> dict:
    ref = Reference.parse(reference)
    registry = Registry(ref.registry)
    manifest = json.loads(registry.get_manifest(ref.repository, str(ref.digest)))
    return json.loads(registry.get_blob(ref.repository, manifest["config"]["digest"]))["config"]


async def _sh(reference: str, script: str) -> str:
    return (await dag.container().from_(reference).with_exec(["sh", "-c", script]).stdout()).strip()


async def test_runtime_images_run_as_non_root(images: dict[str, PushedImage]) -> None:
    for image in images.values():
        user = _image_config(image.reference).get("User", "")
        assert user not in ("", "root", "0", "0:0"), f"{image.service}: wanted a non-root user, got {user!r}"
    assert await _sh(images["backend"].reference, "id -u") == "10001"


async def test_backend_runtime_has_no_compilers_no_pip_and_no_caches(images: dict[str, PushedImage]) -> None:
    out = await _sh(
        images["backend"].reference,
        "for t in gcc cc g++ pip pip3; do command -v $t; done; "
        "ls -d /root/.cache/pip /app/.venv /app/tests /opt/venv/bin/pip 2>/dev/null; echo end",
    )
    assert out == "end", f"wanted no compilers, pip, caches, host venv or tests in the runtime, found:\n{out}"


async def test_backend_has_torch_cpu_and_the_baked_model(images: dict[str, PushedImage]) -> None:
    out = await _sh(
        images["backend"].reference,
        "python -c 'import torch; print(torch.__version__, torch.cuda.is_available())'; ls /opt/model",
    )
    version, cuda, *files = out.split()
    assert version == "2.13.0+cpu"
    assert cuda == "False"
    assert "model.pt" in files


async def test_backend_serves_health_and_predictions_with_postgres(
    images: dict[str, PushedImage], config: Config
) -> None:
    db = (
        dag.container()
        .from_(config.images.postgres)
        .with_env_variable("POSTGRES_USER", "app")
        .with_env_variable("POSTGRES_PASSWORD", "test-only-password")
        .with_env_variable("POSTGRES_DB", "app")
        .with_mounted_temp("/var/lib/postgresql/data")
        .with_exposed_port(5432)
        .as_service()
    )
    backend = (
        dag.container()
        .from_(images["backend"].reference)
        .with_service_binding("db", db)
        .with_env_variable("DATABASE_URL", "postgresql://app:test-only-password@db:5432/app")
        .with_env_variable("MIGRATE_ON_START", "1")
        .as_service(use_entrypoint=True)
    )
    client = (
        dag.container()
        .from_(config.images.python)
        .with_service_binding("backend", backend)
        .with_new_file("/probe.py", PROBE)
        .with_exec(["python3", "/probe.py"])
    )
    result = json.loads(await client.stdout())
    assert result["health"]["status"] == "ok", result
    assert result["predict"]["label"] in result["predict"]["labels"], result
    assert result["recent"][0]["id"] == result["predict"]["id"], "the prediction was not read back from PostgreSQL"


async def test_frontend_serves_its_page_without_node_modules_or_sources(images: dict[str, PushedImage]) -> None:
    ref = images["frontend"].reference
    listing = await _sh(
        ref, "ls -A /app; ls -d /app/node_modules /app/src /usr/local/lib/node_modules 2>/dev/null; true"
    )
    assert "node_modules" not in listing, listing
    assert "src" not in listing.split(), listing
    assert "dist" in listing.split(), listing
    frontend = dag.container().from_(ref).as_service(use_entrypoint=True)
    page = await (
        dag.container()
        .from_(ref)
        .with_service_binding("frontend", frontend)
        .with_exec(["node", "-e", "fetch('http://frontend:8080/').then(r => r.text()).then(t => console.log(t))"])
        .stdout()
    )
    assert "<html" in page.lower()
    assert "<script" in page.lower()


PROBE = """
import json, time, urllib.request

def get(path):
    with urllib.request.urlopen("http://backend:8000" + path, timeout=5) as r:
        return json.load(r)

for _ in range(120):
    try:
        health = get("/health")
        if health.get("status") == "ok":
            break
    except OSError:
        pass
    time.sleep(0.5)
body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()
req = urllib.request.Request("http://backend:8000/predict", data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    predict = json.load(r)
print(json.dumps({"health": health, "predict": predict, "recent": get("/predictions?limit=5")}))
"""


async def test_image_facts_find_nothing_wrong_and_both_fit_their_budgets(
    images: dict[str, PushedImage], config: Config
) -> None:
    for image in images.values():
        facts = await image_facts(config, image)
        kinds = {f.kind.value for f in facts.findings}
        assert not kinds, f"{image.service}: wanted no findings, got {kinds}:\n" + "\n".join(facts.lines())
        assert not facts.over_budget, "\n".join(facts.lines())
        assert facts.compressed_size == sum(layer.compressed_size for layer in facts.layers)
        assert facts.user == "10001:10001"
