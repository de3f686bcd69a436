"""Pure parts of the build: targets, labels, health checks, index arguments, variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.build import health_command, image_labels
from cargohold.config import VariantConfig, load_config
from cargohold.errors import ConfigError
from cargohold.keys import BuildTarget
from cargohold.stages_python import WHEELHOUSE, PythonStages
from cargohold.targets import targets

ROOT = Path(__file__).parents[2]


@pytest.fixture
def config():
    return load_config(ROOT / "cargohold.toml", environ={})


def test_all_services_in_their_default_variants(config) -> None:
    assert targets(config, None, None) == [BuildTarget("backend", "cpu"), BuildTarget("frontend", "default")]
    assert targets(config, "backend", "cuda") == [BuildTarget("backend", "cuda")]


def test_unknown_service_or_variant_names_the_known_ones(config) -> None:
    with pytest.raises(ConfigError, match=r"unknown service 'api'; cargohold\.toml has backend, frontend"):
        targets(config, "api", None)
    with pytest.raises(ConfigError, match="unknown variant 'rocm'; this service has cpu, cuda"):
        targets(config, "backend", "rocm")


def test_variant_budget_overrides_the_service_budget(config) -> None:
    backend = config.service("backend")
    assert backend.budget_for(backend.variants["cpu"]) == 350_000_000
    assert backend.budget_for(backend.variants["cuda"]) == 3_000_000_000


def test_labels_carry_revision_and_source_only_when_known(config) -> None:
    labels = image_labels("backend", config.service("backend"), "abc123", "https://example.com/repo")
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["org.opencontainers.image.source"] == "https://example.com/repo"
    assert "org.opencontainers.image.revision" not in image_labels("backend", config.service("backend"), "", "")


def test_health_checks_use_only_the_services_own_runtime(config) -> None:
    python = health_command(config.service("backend"))
    node = health_command(config.service("frontend"))
    assert python[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/health" in python[2]
    assert node[:2] == ["node", "-e"]
    assert "http://127.0.0.1:8080/health" in node[2]


@pytest.mark.parametrize(
    ("variant", "wheelhouse", "wanted"),
    [
        (VariantConfig(index_url="https://idx/cpu"), False, ["--index-url", "https://idx/cpu"]),
        (VariantConfig(), True, ["--find-links", WHEELHOUSE, "--no-index"]),
        (
            VariantConfig(index_url="https://idx/cpu"),
            True,
            ["--index-url", "https://idx/cpu", "--find-links", WHEELHOUSE],
        ),
        (VariantConfig(find_links="https://wheels.example/"), False, ["--find-links", "https://wheels.example/"]),
        (VariantConfig(), False, []),
    ],
)
def test_heavy_index_arguments(variant: VariantConfig, *, wheelhouse: bool, wanted: list[str]) -> None:
    stages = PythonStages(
        src=None,  # type: ignore[arg-type]  # the index arguments do not touch the graph
        settings=None,  # type: ignore[arg-type]
        variant=variant,
        builder_image="b",
        runtime_image="r",
        wheelhouse=object() if wheelhouse else None,  # type: ignore[arg-type]
    )
    assert stages.index_args() == wanted


@pytest.mark.parametrize(("packages", "wanted"), [("all", ("heavy", "dependencies")), ("heavy", ("heavy",))])
def test_the_bake_reads_the_packages_it_is_given(config, packages: str, wanted: tuple[str, ...]) -> None:
    settings = config.service("backend").python_settings.model_copy(update={"bake_packages": packages})
    stages = PythonStages(
        src=None,  # type: ignore[arg-type]  # what a stage reads is decided without the graph
        settings=settings,
        variant=VariantConfig(),
        builder_image="b",
        runtime_image="r",
    )
    assert stages.reads("bake") == wanted
    assert stages.reads("dependencies") == ()
    assert stages.dev_reads() == ("heavy", "dependencies")  # lint and tests see every package either way
