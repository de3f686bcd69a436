"""Issue 7 on the real registry: a sequence of releases, and a release that fails part-way.

The images are the ones ``ci`` built and checked (the module fixture runs
``ci --only lint,test,build`` once); publishing never builds. A small
fault-injecting proxy in front of the real registry fails one image's
manifest pushes, to show that a failed release leaves every tag where it was.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from cargohold.registry import Registry
from cargohold.sbom import fallback_tag
from tests.integration.workspace import ROOT, copy_repo, runner_env


def _cli(repo: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(ROOT / "pipelines.py"), "--config", str(repo / "cargohold.toml"), *args]
    return subprocess.run(argv, env=runner_env(namespace), cwd=repo, capture_output=True, text=True,
                          timeout=1500, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def checked(bootstrapped: BootstrapReport, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository copy in a git checkout, built and checked by ci in a namespace of its own."""
    repo = copy_repo(tmp_path_factory.mktemp("publish") / "repo")
    git = ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "release"], check=True)
    namespace = f"{local_registry_address()}/publish-src-{uuid.uuid4().hex[:8]}"
    done = _cli(repo, namespace, "ci", "--only", "lint,test,build")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return repo, namespace


def _publish(checked: tuple[Path, str], to: str, version: str) -> subprocess.CompletedProcess[str]:
    repo, namespace = checked
    return _cli(repo, namespace, "publish", "--to", to, "--version", version)


def _digest(to: str, service: str, tag: str) -> str | None:
    repo = f"{to.split('/', 1)[1]}/{service}"
    return Registry(to.split("/", 1)[0]).manifest_digest(repo, tag)


def test_tags_resolve_to_what_was_pushed_and_latest_follows_the_highest_stable(checked: tuple[Path, str]) -> None:
    to = f"{local_registry_address()}/release-{uuid.uuid4().hex[:8]}"
    dry = _cli(*checked, "publish", "--to", to, "--version", "1.0.0", "--dry-run")
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
    with _failing_proxy(fail=rf"^/v2/{namespace}/frontend/manifests/") as port:
        done = _publish(checked, f"127.0.0.1:{port}/{namespace}", "1.0.1")
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


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the real registry; answers 500 to requests whose path matches ``fail``."""

    fail: re.Pattern[str]
    upstream: tuple[str, int]

    def _forward(self) -> None:
        if self.fail.search(self.path) and self.command in ("PUT", "POST"):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815 - http.server names them

    def log_message(self, *_: object) -> None:
        return


@contextlib.contextmanager
def _failing_proxy(fail: str) -> Iterator[int]:
    host, port = local_registry_address().split(":")
    handler = type("FailingProxy", (_Proxy,), {"fail": re.compile(fail), "upstream": (host, int(port))})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
