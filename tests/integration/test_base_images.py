"""The Debian-built base images do what their upstream counterparts do."""

from __future__ import annotations

import pytest
from dagger import dag

from cargohold.base_images import BUILDER_TOOLS_LABEL, BUILDER_TOOLS_PATHS, NODE_VERSION, NPM_VERSION
from cargohold.bootstrap import BootstrapReport
from cargohold.config import Config, PythonConfig, VariantConfig
from cargohold.stages_python import PythonStages
from cargohold.trust import bundle_file, read_bundle

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _run(image: str, *argv: str) -> str:
    return (await dag.container().from_(image).with_exec(list(argv)).stdout()).strip()


async def test_python_base_has_python_3_11_and_venv(dagger_session: str, config: Config) -> None:
    image = config.images.python
    assert (await _run(image, "python", "--version")).startswith("Python 3.11.")
    assert await _run(image, "sh", "-c", "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'print(1)'") == "1"
    assert await _run(image, "sh", "-c", "command -v gcc || echo none") == "none"


async def test_python_build_base_has_compilers_and_headers(dagger_session: str, config: Config) -> None:
    script = "gcc --version | head -1; test -f /usr/include/python3.11/Python.h && echo headers"
    out = await _run(config.images.python_build, "sh", "-c", script)
    assert "gcc" in out
    assert out.endswith("headers")


async def test_python_build_base_brings_the_stages_pip_and_an_empty_venv(dagger_session: str, config: Config) -> None:
    script = (
        "/opt/venv/bin/python /opt/pip-tool/pip/__pip-runner__.py --version;"
        " /opt/venv/bin/python -c 'import sys; print(sys.prefix)'; ls /opt/venv/bin"
    )
    out = await _run(config.images.python_build, "sh", "-c", script)
    assert out.startswith("pip "), out
    assert "(python 3.11)" in out.splitlines()[0], out
    assert "\n/opt/venv\n" in out, out
    assert "pip" not in out.rsplit("/opt/venv\n", 1)[1], f"wanted a venv without pip, got bin/: {out}"
    label = await dag.container().from_(config.images.python_build).label(BUILDER_TOOLS_LABEL)
    assert label == BUILDER_TOOLS_PATHS
    stages = PythonStages(
        dag.directory(), PythonConfig(), VariantConfig(), config.images.python_build, config.images.python
    )
    assert (await stages.with_base_facts()).builder_tools


async def test_a_builder_base_without_the_tools_gets_them_made(dagger_session: str, config: Config) -> None:
    # A builder image of the user's own (here the runtime base: python and venv, no pip, no label).
    src = dag.directory().with_new_file("requirements.lock", "six==1.16.0\n")
    bundle = bundle_file(read_bundle(config.ca_bundle_paths()))
    stages = PythonStages(src, PythonConfig(), VariantConfig(), config.images.python, config.images.python,
                          ca_bundle=bundle)  # fmt: skip
    stages = await stages.with_base_facts()
    assert not stages.builder_tools
    venv = stages.stage("dependencies", {})
    assert "lib/python3.11/site-packages/six.py" in await venv.glob("lib/python3.11/site-packages/*.py")


async def test_node_base_has_the_pinned_node_and_npm(dagger_session: str, config: Config) -> None:
    assert await _run(config.images.node, "node", "--version") == f"v{NODE_VERSION}"
    assert await _run(config.images.node, "npm", "--version") == NPM_VERSION


async def test_postgres_on_tmpfs_is_reached_by_service_name(dagger_session: str, config: Config) -> None:
    data = "/var/lib/postgresql/data"
    postgres = (
        dag.container()
        .from_(config.images.postgres)
        .with_env_variable("POSTGRES_USER", "app")
        .with_env_variable("POSTGRES_DB", "appdb")
        .with_env_variable("POSTGRES_PASSWORD", "not-a-secret-test-only")
        .with_mounted_temp(data)
        .with_exposed_port(5432)
        .as_service()
    )
    client = (
        dag.container()
        .from_(config.images.postgres)
        .with_service_binding("db", postgres)
        .with_env_variable("PGPASSWORD", "not-a-secret-test-only")
        .with_exec(["sh", "-c", "for i in $(seq 60); do pg_isready -h db -U app && break; sleep 0.5; done"])
        .with_exec(
            [
                "psql",
                "-h",
                "db",
                "-U",
                "app",
                "-d",
                "appdb",
                "-tAc",
                "create table t(x int); insert into t values (42); select x from t",
            ]
        )
    )
    assert (await client.stdout()).strip().splitlines()[-1] == "42"


async def test_a_second_bootstrap_reuses_everything(bootstrapped: BootstrapReport) -> None:
    from cargohold.bootstrap import bootstrap  # noqa: PLC0415

    again = bootstrap()
    assert again.engine.reused
    assert not again.registry.started
    assert again.base_images is not None
    assert [r.name for r in again.base_images.results if r.built] == []
    assert again.base_images.references() == (bootstrapped.base_images.references() if bootstrapped.base_images else {})
