"""The smoke pipeline, step by step, on the real engine and registry."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from dagger import dag

from cargohold.config import Config
from cargohold.main import Cargohold
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.smoke import MESSAGE_FILE, SmokeReport
from cargohold.trust import BUNDLE_PATH, TRUST_VARIABLES, bundle_file, read_bundle

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def report(dagger_session: str, config: Config, registry_namespace: str) -> SmokeReport:
    bundle = bundle_file(read_bundle(config.ca_bundle_paths()))
    return await Cargohold().smoke(str(config.images.reference("python")), registry_namespace, bundle)


async def test_builds_from_the_python_base_and_runs_a_package_from_pypi(report: SmokeReport) -> None:
    assert report.output == "six 1.16.0", f"wanted 'six 1.16.0', got {report.output!r}"


async def test_publishes_by_digest_to_the_registry(report: SmokeReport, registry_namespace: str) -> None:
    ref = Reference.parse(report.reference)
    assert ref.digest is not None, f"wanted a digest reference, got {report.reference}"
    assert Registry(ref.registry).manifest_digest(ref.repository, ref.digest) == ref.digest
    assert Registry(ref.registry).manifest_digest(ref.repository, "latest") == ref.digest
    assert report.reference.startswith(f"{registry_namespace}/smoke")


async def test_pulled_back_by_digest_the_content_matches(report: SmokeReport) -> None:
    assert report.pulled_content == "cargohold smoke: six==1.16.0"
    again = await dag.container().from_(report.reference).file(MESSAGE_FILE).contents()
    assert again.strip() == report.pulled_content


async def test_the_ca_bundle_stays_out_of_the_published_image(report: SmokeReport) -> None:
    ref = Reference.parse(report.reference)
    registry = Registry(ref.registry)
    manifest = json.loads(registry.get_manifest(ref.repository, str(ref.digest)))
    image_config = json.loads(registry.get_blob(ref.repository, manifest["config"]["digest"]))
    env_names = {entry.split("=", 1)[0] for entry in image_config["config"].get("Env", [])}
    assert not env_names & set(TRUST_VARIABLES), f"trust variables leaked into the image: {env_names}"
    absent = await dag.container().from_(report.reference).with_exec(["test", "!", "-e", BUNDLE_PATH]).sync()
    assert absent is not None


async def test_reports_the_engine_and_step_timings(report: SmokeReport, dagger_session: str) -> None:
    assert report.engine_version == dagger_session
    assert report.build_seconds > 0
    assert report.publish_seconds > 0
    assert report.pull_seconds > 0
