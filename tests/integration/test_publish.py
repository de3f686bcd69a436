"""Issue 7 on the real registry: a sequence of releases, and a release that fails part-way.

The images are the ones ``ci`` built and checked (the module fixture runs
``ci --only lint,test,build`` once); publishing never builds. The
fault-injecting proxy (``faultproxy.py``) in front of the real registry fails
one image's manifest pushes, to show that a failed release leaves every tag
where it was.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from cargohold.registry import Registry
from cargohold.sbom import fallback_tag
from tests.integration.faultproxy import Rule, fault_proxy
from tests.integration.reliability_support import cli, git_repo
from tests.integration.workspace import runner_env


@pytest.fixture(scope="module")
def checked(bootstrapped: BootstrapReport, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository copy in a git checkout, built and checked by ci in a namespace of its own."""
    repo = git_repo(tmp_path_factory.mktemp("publish") / "repo")
    namespace = f"{local_registry_address()}/publish-src-{uuid.uuid4().hex[:8]}"
    done = cli(repo, runner_env(namespace), "ci", "--only", "lint,test,build")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return repo, namespace


def _publish(checked: tuple[Path, str], to: str, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    repo, namespace = checked
    return cli(repo, runner_env(namespace), "publish", "--to", to, "--version", version, *extra)


def _digest(to: str, service: str, tag: str) -> str | None:
    repo = f"{to.split('/', 1)[1]}/{service}"
    return Registry(to.split("/", 1)[0]).manifest_digest(repo, tag)


def test_tags_resolve_to_what_was_pushed_and_latest_follows_the_highest_stable(checked: tuple[Path, str]) -> None:
    to = f"{local_registry_address()}/release-{uuid.uuid4().hex[:8]}"
    dry = _publish(checked, to, "1.0.0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    planned = dict(re.findall(r"^\S+/(\w+)@(sha256:[0-9a-f]{64})", dry.stdout, re.MULTILINE))  # image lines
    assert set(planned) == {"backend", "frontend"}
    assert _digest(to, "backend", "1.0.0") is None, "a dry run wrote something"

    assert _publish(checked, to, "1.0.0").returncode == 0
    for service, digest in planned.items():
        for tag in ("1.0.0", "1.0", "1", "latest"):
            assert _digest(to, service, tag) == digest, f"{service}:{tag} is not the digest the dry run printed"
    assert _digest(to, "backend", "1.0.0-cpu") == planned["backend"]
    _assert_sbom(to, "backend", planned["backend"], wanted_component="torch")

    assert _publish(checked, to, "0.9.1").returncode == 0  # a backport
    assert _digest(to, "backend", "latest") == planned["backend"]
    assert _digest(to, "backend", "0.9") == _digest(to, "backend", "0.9.1") != planned["backend"]

    assert _publish(checked, to, "1.1.0-rc.1").returncode == 0  # a pre-release
    assert _digest(to, "backend", "latest") == planned["backend"]
    assert _digest(to, "backend", "1.1") is None

    assert _publish(checked, to, "1.1.0").returncode == 0
    assert _digest(to, "backend", "latest") == _digest(to, "backend", "1.1.0") != planned["backend"]


def test_a_registry_failing_one_image_leaves_every_tag_where_it_was(checked: tuple[Path, str]) -> None:
    namespace = f"release-{uuid.uuid4().hex[:8]}"
    direct = f"{local_registry_address()}/{namespace}"
    assert _publish(checked, direct, "1.0.0").returncode == 0
    before = {s: _digest(direct, s, t) for s in ("backend", "frontend") for t in ("latest",)}
    # Every write of the frontend's manifests fails with HTTP 500, the retries included.
    with fault_proxy(Rule("PUT|POST", rf"^/v2/{namespace}/frontend/manifests/", "500", times=None)) as proxy:
        done = _publish(checked, f"{proxy.address}/{namespace}", "1.0.1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HTTP 500" in done.stderr
    assert "Traceback" not in done.stderr
    assert {s: _digest(direct, s, "latest") for s in ("backend", "frontend")} == before
    assert _digest(direct, "backend", "1.0.1") is None, "a tag moved although the release failed"
    # The next run, with the registry healthy again, finishes the release.
    assert _publish(checked, direct, "1.0.1").returncode == 0
    assert _digest(direct, "frontend", "latest") == _digest(direct, "frontend", "1.0.1") != before["frontend"]


def _assert_sbom(to: str, service: str, image_digest: str, wanted_component: str) -> None:
    """The SBOM is an artifact next to the image: its subject is the image, it lists what runs."""
    host, namespace = to.split("/", 1)
    registry, repo = Registry(host), f"{namespace}/{service}"
    artifact = json.loads(registry.get_manifest(repo, fallback_tag(image_digest)))
    assert artifact["artifactType"] == "application/vnd.cyclonedx+json"
    assert artifact["subject"]["digest"] == image_digest
    bom = json.loads(registry.get_blob(repo, artifact["layers"][0]["digest"]))
    names = {c["name"] for c in bom["components"]}
    assert wanted_component in names, f"wanted {wanted_component} in the SBOM, got {sorted(names)}"
