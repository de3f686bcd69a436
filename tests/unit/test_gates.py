"""Hygiene gates: base images pinned by digest, runtime-image findings fail unless allowed (pure)."""

from __future__ import annotations

import pytest

from cargohold.config import parse_config
from cargohold.errors import ConfigError
from cargohold.image_facts import TarEntry, analyse, gate_problems
from tests.reliability import record

PIN = "python:3.11-slim@sha256:" + "a" * 64
ROLES = ("python", "python-build", "node", "node-runtime", "postgres")


def _raw(**images: str) -> dict[str, object]:
    return {"project": {"name": "acme"}, "images": {r: images.get(r.replace("-", "_"), PIN) for r in ROLES}}


def test_an_unpinned_base_image_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"images\.node: not pinned by digest; pin \(name@sha256:…\)"):
        parse_config(_raw(node="node:22-bookworm-slim"))


def test_unpinned_images_can_be_allowed_explicitly() -> None:
    raw = _raw(node="node:22-bookworm-slim") | {"build": {"allow-unpinned": True}}
    assert parse_config(raw).images.node == "node:22-bookworm-slim"


def _facts(paths: list[str], user: str = "10001:10001"):
    manifest = {"layers": [{"digest": "sha256:" + "b" * 64, "size": 100}]}
    config = {"config": {"User": user}, "history": [{"created_by": "x"}]}
    listing = [TarEntry(p, 10) for p in paths]
    return analyse("img", "sha256:" + "c" * 64, manifest, config, [listing], budget=None, variant="cpu")


def test_a_clean_runtime_image_passes_its_gate() -> None:
    assert gate_problems(_facts(["/app/main.py", "/opt/venv/lib/python3.11/site-packages/x.py"])) == []


def test_compilers_root_and_tests_fail_the_gate_unless_allowed() -> None:
    facts = _facts(["/usr/bin/gcc-12", "/app/tests/test_x.py"], user="")
    kinds = {p.split(":")[0] for p in gate_problems(facts)}
    assert kinds == {"compiler-in-runtime", "test-files", "runs-as-root"}
    assert {p.split(":")[0] for p in gate_problems(facts, ["test-files"])} == {"compiler-in-runtime", "runs-as-root"}


# Each gate, failing on its own: one planted path (or a root user) in an otherwise clean image.
PLANTED = {
    "compiler-in-runtime": (["/usr/bin/gcc-12"], "10001:10001"),
    "package-cache": (["/root/.cache/pip/http/a/b"], "10001:10001"),
    "apt archives": (["/var/cache/apt/archives/gcc_12.deb"], "10001:10001"),
    "runs-as-root": ([], ""),
    "host-venv": (["/app/.venv/bin/python"], "10001:10001"),
    "git-directory": (["/app/.git/HEAD"], "10001:10001"),
    "test-files": (["/app/tests/test_x.py"], "10001:10001"),
    "cuda-in-cpu-image": (["/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12"], "10001:10001"),
    "node-modules": (["/app/node_modules/left-pad/index.js"], "10001:10001"),
}


def test_each_gate_fails_on_its_own_and_only_its_kind_allows_it() -> None:
    for name, (paths, user) in PLANTED.items():
        facts = _facts(["/app/main.py", *paths], user=user)
        problems = gate_problems(facts)
        assert len(problems) == 1, (name, problems)
        kind = problems[0].split(":")[0]
        assert name in (kind, "apt archives"), problems
        assert gate_problems(facts, [kind]) == [], name
    with pytest.raises(ConfigError, match="not pinned by digest"):
        parse_config(_raw(python="python:3.11-slim"))
    record("hygiene gates", "each gate on its own, and the unpinned base image",
           f"{len(PLANTED)} images with one planted problem each ({', '.join(PLANTED)}); one tag-only base image",
           "each gate failed alone; allowing its kind alone passed it; the unpinned image was refused")  # fmt: skip
