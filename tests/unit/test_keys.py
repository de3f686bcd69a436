"""Stage and image keys: same inputs give the same key anywhere; relevant changes, and only those, change it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cargohold.config import Config, apply_overrides, load_config, parse_config
from cargohold.errors import ConfigError
from cargohold.keys import SourceTree, StageKeys, base_digests, service_keys
from cargohold.source_tree import host_tree, host_wheelhouse_digest

ROOT = Path(__file__).parents[2]


@pytest.fixture
def config() -> Config:
    return load_config(ROOT / "cargohold.toml", environ={})


def _tree(service: str, config: Config) -> SourceTree:
    svc = config.service(service)
    return host_tree(ROOT / svc.path, svc.context)


def _keys(config: Config, service: str, variant: str, tree: SourceTree, wheelhouse: str = "") -> StageKeys:
    return service_keys(config, service, variant, tree=tree, bases=base_digests(config), wheelhouse=wheelhouse)


def _changed(tree: SourceTree, path: str) -> SourceTree:
    return SourceTree({**tree.files, path: "0" * 64})


def test_same_inputs_same_keys(config: Config) -> None:
    a = _keys(config, "backend", "cpu", _tree("backend", config))
    b = _keys(config, "backend", "cpu", _tree("backend", config))
    assert a == b
    assert list(a.stages) == ["heavy", "dependencies", "bake", "app", "runtime-base"]


def test_a_code_change_keeps_the_dependency_stages(config: Config) -> None:
    tree = _tree("backend", config)
    before, after = (
        _keys(config, "backend", "cpu", tree),
        _keys(config, "backend", "cpu", _changed(tree, "app/main.py")),
    )
    assert before.stages["heavy"] == after.stages["heavy"]
    assert before.stages["dependencies"] == after.stages["dependencies"]
    assert before.stages["bake"] == after.stages["bake"]  # main.py is not among the bake's inputs
    assert before.stages["app"] != after.stages["app"]
    assert before.stages["runtime-base"] == after.stages["runtime-base"]
    assert before.image != after.image


def test_a_change_to_the_training_code_bakes_again(config: Config) -> None:
    tree = _tree("backend", config)
    before = _keys(config, "backend", "cpu", tree)
    after = _keys(config, "backend", "cpu", _changed(tree, "app/train.py"))
    assert before.stages["bake"] != after.stages["bake"]
    assert before.stages["heavy"] == after.stages["heavy"]


def test_without_bake_inputs_any_app_file_bakes_again(config: Config) -> None:
    raw = config.model_dump(by_alias=True)
    raw["services"]["backend"]["python"]["bake-inputs"] = None
    whole_app = parse_config(raw)
    tree = _tree("backend", whole_app)
    before = _keys(whole_app, "backend", "cpu", tree)
    assert before.stages["bake"] != _keys(whole_app, "backend", "cpu", _changed(tree, "app/main.py")).stages["bake"]


def test_a_bake_input_that_matches_nothing_is_a_config_error(config: Config) -> None:
    raw = config.model_dump(by_alias=True)
    raw["services"]["backend"]["python"]["bake-inputs"] = ["app/trian.py"]
    with pytest.raises(ConfigError, match=r"app/trian\.py matches no file"):
        _keys(parse_config(raw), "backend", "cpu", _tree("backend", config))


def test_a_lockfile_change_rebuilds_dependencies_but_not_torch(config: Config) -> None:
    tree = _tree("backend", config)
    before = _keys(config, "backend", "cpu", tree)
    after = _keys(config, "backend", "cpu", _changed(tree, "requirements/app.lock"))
    assert before.stages["heavy"] == after.stages["heavy"]
    assert before.stages["dependencies"] != after.stages["dependencies"]
    assert before.stages["bake"] == after.stages["bake"]  # bake-packages = "heavy": the model needs torch alone


def test_a_heavy_change_bakes_again(config: Config) -> None:
    tree = _tree("backend", config)
    before = _keys(config, "backend", "cpu", tree)
    after = _keys(config, "backend", "cpu", _changed(tree, "requirements/torch.txt"))
    assert before.stages["heavy"] != after.stages["heavy"]
    assert before.stages["bake"] != after.stages["bake"]


def _bake_packages(config: Config, value: str) -> Config:
    raw = config.model_dump(by_alias=True)
    raw["services"]["backend"]["python"]["bake-packages"] = value
    return parse_config(raw)


def test_a_bake_on_all_packages_bakes_again_after_a_lockfile_change(config: Config) -> None:
    every_package = _bake_packages(config, "all")
    tree = _tree("backend", every_package)
    before = _keys(every_package, "backend", "cpu", tree)
    after = _keys(every_package, "backend", "cpu", _changed(tree, "requirements/app.lock"))
    assert before.stages["bake"] != after.stages["bake"]
    assert before.stages["bake"] != _keys(config, "backend", "cpu", tree).stages["bake"]


def test_a_bake_on_heavy_packages_without_heavy_requirements_is_a_config_error(config: Config) -> None:
    raw = _bake_packages(config, "heavy").model_dump(by_alias=True)
    raw["services"]["backend"]["python"]["heavy"] = None
    with pytest.raises(ConfigError, match=r'bake-packages = "heavy" in variant cpu, which has no heavy'):
        _keys(parse_config(raw), "backend", "cpu", _tree("backend", config))


def test_irrelevant_files_change_nothing(config: Config) -> None:
    tree = _tree("backend", config)
    before = _keys(config, "backend", "cpu", tree)
    after = _keys(config, "backend", "cpu", _changed(_changed(tree, "README.md"), "tests/test_api.py"))
    assert before == after


def test_base_image_variant_and_wheelhouse_are_part_of_the_keys(config: Config) -> None:
    tree = _tree("backend", config)
    cpu = _keys(config, "backend", "cpu", tree)
    assert _keys(config, "backend", "cpu", tree, wheelhouse="abc").stages["heavy"] != cpu.stages["heavy"]
    cuda = _keys(config, "backend", "cuda", tree.__class__({**tree.files}))
    assert cuda.stages["heavy"] != cpu.stages["heavy"]
    assert cuda.stages["dependencies"] == cpu.stages["dependencies"]  # same lockfile, same base
    new_base = "127.0.0.1:5000/base/python-build@sha256:" + "e" * 64
    rebased = parse_config(
        apply_overrides(config.model_dump(by_alias=True), {"CARGOHOLD_IMAGE_PYTHON_BUILD": new_base})
    )
    assert _keys(rebased, "backend", "cpu", tree).stages["dependencies"] != cpu.stages["dependencies"]


def test_a_wheelhouse_counts_by_content_not_by_path(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"x" * 10)
    assert host_wheelhouse_digest(tmp_path / "a") == host_wheelhouse_digest(tmp_path / "b")
    (tmp_path / "b" / "extra-1.0-py3-none-any.whl").write_bytes(b"y")
    assert host_wheelhouse_digest(tmp_path / "a") != host_wheelhouse_digest(tmp_path / "b")


def test_a_frontend_change_leaves_the_backend_keys_alone(config: Config) -> None:
    backend = _keys(config, "backend", "cpu", _tree("backend", config))
    front_tree = _tree("frontend", config)
    front = _keys(config, "frontend", "default", front_tree)
    changed = _keys(config, "frontend", "default", _changed(front_tree, "src/main.ts"))
    assert changed.stages["dependencies"] == front.stages["dependencies"]
    assert changed.stages["build"] != front.stages["build"]
    assert _keys(config, "backend", "cpu", _tree("backend", config)) == backend


def test_a_missing_lockfile_is_a_clear_error(config: Config) -> None:
    tree = _tree("backend", config)
    files = {p: d for p, d in tree.files.items() if p != "requirements/app.lock"}
    with pytest.raises(ConfigError, match=r"requirements/app\.lock is not in the service's build context"):
        _keys(config, "backend", "cpu", dataclasses.replace(tree, files=files))
