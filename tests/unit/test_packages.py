"""A layer per locked package: the lockfile read as packages, their keys, and where their entries live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cargohold.assemble import layer_notes
from cargohold.config import load_config, parse_config
from cargohold.keys import base_digests, service_keys
from cargohold.packages import NotPinnedError, is_packages_repository, plan
from cargohold.retention import CachedImage, select_expired
from cargohold.source_tree import host_tree
from cargohold.stage_cache import Hit

ROOT = Path(__file__).parents[2]
LOCK = """\
# a comment
--index-url https://pypi.org/simple
fastapi==0.165.0          # via nothing
Six==1.16.0 \\
    --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926
psycopg[binary]==3.3.9 ; python_version >= "3.10"
"""


def test_every_pinned_line_is_a_package_with_its_normalized_name_and_whole_line() -> None:
    packages = plan(LOCK, "basis").packages
    assert [p.name for p in packages] == ["fastapi", "six", "psycopg"]
    assert packages[1].requirement == (
        "Six==1.16.0 --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"
    )
    assert packages[1].pin == "Six==1.16.0"
    assert plan(LOCK, "basis").options == ("--index-url https://pypi.org/simple",)


def test_a_package_key_changes_with_its_own_line_only() -> None:
    before = {p.name: p.key for p in plan(LOCK, "basis").packages}
    bumped = {p.name: p.key for p in plan(LOCK.replace("fastapi==0.165.0", "fastapi==0.166.0"), "basis").packages}
    added = {p.name: p.key for p in plan(LOCK + "click==8.5.1\n", "basis").packages}
    assert bumped["fastapi"] != before["fastapi"]
    assert {k: v for k, v in bumped.items() if k != "fastapi"} == {k: v for k, v in before.items() if k != "fastapi"}
    assert {k: v for k, v in added.items() if k != "click"} == before


def test_the_builder_and_the_index_options_change_every_key() -> None:
    keys = {p.key for p in plan(LOCK, "basis").packages}
    assert keys.isdisjoint(p.key for p in plan(LOCK, "another builder").packages)
    other_index = LOCK.replace("https://pypi.org/simple", "https://mirror.example/simple")
    assert keys.isdisjoint(p.key for p in plan(other_index, "basis").packages)
    assert plan(LOCK, "basis").skeleton_key != plan(LOCK, "another builder").skeleton_key


def test_the_requirements_file_of_some_packages_keeps_the_options() -> None:
    lock = plan(LOCK, "basis")
    text = lock.requirements_file(lock.packages[1:2])
    assert text.splitlines() == ["--index-url https://pypi.org/simple", lock.packages[1].requirement]


def test_tags_are_valid_registry_tags_and_a_package_named_venv_is_kept_apart() -> None:
    lock = plan("venv==20.0.0\nzope.interface==7.0\n", "basis")
    assert [p.tag.split("-")[0] for p in lock.packages] == ["pkg", "zope"]
    assert lock.packages[1].tag.startswith("zope-interface-")
    assert lock.skeleton_tag.startswith("venv-")
    assert all(len(t) <= 128 for t in (lock.skeleton_tag, *(p.tag for p in lock.packages)))


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("fastapi>=0.100\n", "not pinned"),
        ("-r other.txt\n", "-r"),
        ("-e ./local\n", "-e"),
        ("https://example.com/x.whl\n", "not pinned"),
        ("six==1.16.0\nsix==1.17.0\n", "more than once"),
    ],
)
def test_a_lockfile_that_cannot_be_split_says_why(text: str, wanted: str) -> None:
    with pytest.raises(NotPinnedError, match=wanted):
        plan(text, "basis")


def test_the_packages_repository_is_recognized_in_any_namespace() -> None:
    assert is_packages_repository("acme/cache/backend/cpu/packages")
    assert is_packages_repository("cache/backend/cpu/packages")
    assert not is_packages_repository("acme/cache/backend/packages")  # a variant named "packages"
    assert not is_packages_repository("acme/cache/backend/cpu")
    assert not is_packages_repository("acme/backend/cpu/packages/x")


def test_retention_ages_packages_but_never_counts_them() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    repo = "acme/cache/backend/cpu/packages"
    entries = [CachedImage(repo, f"p{i}", f"sha256:{i:064d}", now - timedelta(days=i)) for i in range(5)]
    assert select_expired(entries, now=now, older_than=None, keep_newest=1) == []
    assert [e.tag for e in select_expired(entries, now=now, older_than=timedelta(days=3), keep_newest=1)] == ["p4"]


def test_only_the_setting_changes_the_dependency_key_and_gives_a_package_basis() -> None:
    config = load_config(ROOT / "cargohold.toml", environ={})
    svc = config.service("backend")
    tree = host_tree(ROOT / svc.path, svc.context)
    on = service_keys(config, "backend", "cpu", tree=tree, bases=base_digests(config))
    settings = svc.python_settings.model_copy(update={"layer_per_package": False})
    off_config = config.model_copy(
        update={"services": {**config.services, "backend": svc.model_copy(update={"python": settings})}}
    )
    off = service_keys(off_config, "backend", "cpu", tree=tree, bases=base_digests(config))
    assert on.packages
    assert not off.packages
    assert on.stages["dependencies"] != off.stages["dependencies"]
    assert {k: v for k, v in on.stages.items() if k != "dependencies"} == {
        k: v for k, v in off.stages.items() if k != "dependencies"
    }


def test_a_stacked_entry_names_each_of_its_layers_in_the_runtime_history() -> None:
    notes = ["cargohold: venv at /opt/venv", "cargohold: six==1.16.0 at /opt/venv"]
    config = {"rootfs": {"diff_ids": ["d1", "d2"]}, "history": [{"created_by": note} for note in notes]}
    stacked = Hit("r@sha256:x", 0.0, 0, ({"digest": "1"}, {"digest": "2"}), config)
    single = Hit("r@sha256:y", 0.0, 0, ({"digest": "1"},), {"rootfs": {"diff_ids": ["d1"]}})
    engine = {"rootfs": {"diff_ids": ["d1", "d2"]}, "history": [{"created_by": "Directory.withDirectory"}] * 2}
    split = Hit("r@sha256:z", 0.0, 0, ({"digest": "1"}, {"digest": "2"}), engine)
    assert layer_notes(stacked, "dependencies", "/opt/venv") == notes
    assert layer_notes(single, "app", "/app") == ["cargohold: app at /app"]
    assert layer_notes(split, "heavy", "/opt/heavy") == ["cargohold: heavy at /opt/heavy"] * 2


def test_heavy_split_changes_the_heavy_key_and_what_follows_it_only() -> None:
    config = load_config(ROOT / "cargohold.toml", environ={})
    data = config.model_dump(by_alias=True)
    data["services"]["backend"]["python"]["heavy-split"] = []
    unsplit = parse_config(data)
    svc = config.service("backend")
    tree = host_tree(ROOT / svc.path, svc.context)
    split_keys = service_keys(config, "backend", "cpu", tree=tree, bases=base_digests(config)).stages
    plain_keys = service_keys(unsplit, "backend", "cpu", tree=tree, bases=base_digests(config)).stages
    assert config.service("backend").python_settings.heavy_split == ("torch/lib/libtorch_cpu.so",)
    assert {k for k in split_keys if split_keys[k] != plain_keys[k]} == {"heavy", "bake"}  # the bake reads heavy
