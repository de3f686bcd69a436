from __future__ import annotations

import dataclasses

from cargohold.base_images import BUILDER_TOOLS_LABEL, BUILDER_TOOLS_PATHS, RECIPES, local_image_overrides
from cargohold.config import apply_overrides, parse_config


def test_recipe_keys_are_stable_and_distinct() -> None:
    keys = [r.key() for r in RECIPES]
    assert keys == [r.key() for r in RECIPES]
    assert len(set(keys)) == len(keys)


def test_a_changed_package_list_changes_the_key_and_tag() -> None:
    python = RECIPES[0]
    changed = dataclasses.replace(python, packages=(*python.packages, "curl"))
    assert changed.key() != python.key()
    assert changed.tag != python.tag
    assert changed.tag.startswith("bookworm-")


def test_every_config_image_role_has_a_local_base_image() -> None:
    refs = {r.name: f"127.0.0.1:5000/{r.repository}@sha256:{'c' * 64}" for r in RECIPES}
    overrides = local_image_overrides(refs)
    raw = {"project": {"name": "acme"}, "images": {}}
    config = parse_config(apply_overrides(raw, overrides))
    assert config.images.python_build == refs["python-build"]
    assert config.images.postgres == refs["postgres"]


def test_runtime_images_are_slim_and_builder_has_compilers() -> None:
    by_name = {r.name: r for r in RECIPES}
    assert "gcc" not in by_name["python"].packages
    assert "gcc" in by_name["python-build"].packages
    assert by_name["python"].image_config().env["LANG"] == "C.UTF-8"


def test_only_the_builder_base_says_it_brings_the_stages_pip_and_venv() -> None:
    by_name = {r.name: r for r in RECIPES}
    assert by_name["python-build"].image_config().labels[BUILDER_TOOLS_LABEL] == BUILDER_TOOLS_PATHS
    assert BUILDER_TOOLS_LABEL not in by_name["python"].image_config().labels


def test_the_builder_label_names_the_paths_the_stages_use() -> None:
    from cargohold.stages_python import PIP, VENV  # noqa: PLC0415 - the SDK-side module, for its paths

    pip_package, venv = BUILDER_TOOLS_PATHS.split()
    assert venv == VENV
    assert PIP[0] == f"{VENV}/bin/python"
    assert PIP[1] == f"{pip_package}/__pip-runner__.py"
