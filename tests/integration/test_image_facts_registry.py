"""The image facts of the real base images, read from the real local registry."""

from __future__ import annotations

import json

import pytest

from cargohold.bootstrap import BootstrapReport
from cargohold.image_facts import FindingKind, ImageFacts, read_image_facts
from cargohold.reference import Reference
from cargohold.registry import Registry


def _base(bootstrapped: BootstrapReport, name: str) -> tuple[Registry, Reference]:
    if bootstrapped.base_images is None:
        pytest.skip("base images come from upstream on this engine, not from the local registry")
    ref = Reference.parse(bootstrapped.base_images.references()[name])
    assert ref.digest is not None, f"wanted a digest reference for {name}, got {ref}"
    return Registry(ref.registry, timeout=120.0), ref


def _facts(bootstrapped: BootstrapReport, name: str) -> ImageFacts:
    registry, ref = _base(bootstrapped, name)
    assert ref.digest is not None
    return read_image_facts(registry, ref.repository, ref.digest, role="runtime")


def test_the_build_image_read_as_a_runtime_image_has_compilers_and_runs_as_root(
    bootstrapped: BootstrapReport,
) -> None:
    facts = _facts(bootstrapped, "python-build")
    kinds = {f.kind for f in facts.findings}
    assert {FindingKind.COMPILER_IN_RUNTIME, FindingKind.RUNS_AS_ROOT} <= kinds, f"got {facts.findings}"
    compilers = next(f for f in facts.findings if f.kind is FindingKind.COMPILER_IN_RUNTIME)
    assert any("gcc-12" in path for path in compilers.paths), f"wanted gcc-12 named, got {compilers.paths}"
    assert "/usr/lib/gcc" in compilers.paths, compilers.paths
    assert compilers.bytes > 50_000_000, f"wanted cc1, cc1plus… (>50 MB), got {compilers.bytes}"


def test_the_runtime_python_image_has_no_compilers_and_consistent_sizes(bootstrapped: BootstrapReport) -> None:
    registry, ref = _base(bootstrapped, "python")
    facts = _facts(bootstrapped, "python")
    assert ref.digest is not None
    manifest = json.loads(registry.get_manifest(ref.repository, ref.digest))
    assert facts.digest == ref.digest
    assert FindingKind.COMPILER_IN_RUNTIME not in {f.kind for f in facts.findings}, f"got {facts.findings}"
    layer_sizes = sum(layer["size"] for layer in manifest["layers"])
    assert facts.compressed_size == layer_sizes, f"wanted {layer_sizes}, got {facts.compressed_size}"
    assert facts.uncompressed_size > facts.compressed_size, f"{facts.uncompressed_size} vs {facts.compressed_size}"
    assert [layer.digest for layer in facts.layers] == [layer["digest"] for layer in manifest["layers"]]
    assert all(layer.created_by.startswith("mmdebstrap") for layer in facts.layers), facts.layers
    assert "/usr/bin/python3.11" in dict(facts.largest_paths), facts.largest_paths
    assert facts.lines()[0].startswith(f"{ref.repository}@{ref.digest} "), facts.lines()[0]


def test_a_budget_is_judged_on_the_real_size(bootstrapped: BootstrapReport) -> None:
    registry, ref = _base(bootstrapped, "python")
    assert ref.digest is not None
    tight = read_image_facts(registry, ref.repository, ref.digest, budget=1_000_000)
    assert tight.over_budget
    assert FindingKind.OVER_BUDGET in {f.kind for f in tight.findings}
    roomy = read_image_facts(registry, ref.repository, ref.digest, budget=tight.compressed_size)
    assert not roomy.over_budget
    assert roomy.lines()[0].endswith(": OK"), roomy.lines()[0]
