from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cargohold.changes import ChangeDetectionError, affected_services, changed_files, ci_matrix, matches_glob
from cargohold.config import Config, parse_config
from cargohold.errors import ConfigError
from tests.unit.test_config import VALID


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    # the machine's git configuration (hooks, default branch, excludes) must not reach the tests
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout


def write(repo: Path, path: str, text: str = "x\n") -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on ``main`` with a committed backend, frontend and README; .gitignore drops *.log."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    for path in ("README.md", "cargohold.toml", "services/backend/app/main.py", "services/frontend/src/app.ts"):
        write(root, path)
    write(root, ".gitignore", "*.log\n")
    commit(root, "initial")
    return root


def test_a_clean_checkout_has_no_changes(repo: Path) -> None:
    assert changed_files(repo) == []


def test_modified_staged_untracked_and_deleted_files_are_changed_ignored_ones_are_not(repo: Path) -> None:
    write(repo, "services/backend/app/main.py", "changed\n")  # modified, unstaged
    write(repo, "services/frontend/src/app.ts", "changed\n")
    git(repo, "add", "services/frontend/src/app.ts")  # staged
    write(repo, "libs/common/new folder/util.py")  # untracked, in an untracked folder, with a space
    (repo / "README.md").unlink()  # deleted
    write(repo, "services/backend/debug.log")  # ignored
    assert changed_files(repo) == [
        "README.md",
        "libs/common/new folder/util.py",
        "services/backend/app/main.py",
        "services/frontend/src/app.ts",
    ]


def test_a_rename_changes_both_paths(repo: Path) -> None:
    git(repo, "mv", "services/backend/app/main.py", "services/frontend/main.py")
    assert changed_files(repo) == ["services/backend/app/main.py", "services/frontend/main.py"]


def test_since_a_base_branch_adds_the_branchs_commits_but_not_the_bases_later_ones(repo: Path) -> None:
    git(repo, "switch", "--quiet", "-c", "feature")
    write(repo, "services/backend/app/routes.py")
    commit(repo, "feature work")
    git(repo, "switch", "--quiet", "main")
    write(repo, "services/frontend/src/app.ts", "main moved on\n")
    commit(repo, "work on main after the branch point")
    git(repo, "switch", "--quiet", "feature")
    write(repo, "README.md", "uncommitted\n")

    assert changed_files(repo) == ["README.md"]
    assert changed_files(repo, since="main") == ["README.md", "services/backend/app/routes.py"]


def test_since_reports_both_sides_of_a_committed_rename(repo: Path) -> None:
    git(repo, "switch", "--quiet", "-c", "feature")
    git(repo, "mv", "services/backend/app/main.py", "services/backend/app/server.py")
    commit(repo, "rename")
    assert changed_files(repo, since="main") == ["services/backend/app/main.py", "services/backend/app/server.py"]


def test_an_unknown_ref_says_to_fetch_it(repo: Path) -> None:
    with pytest.raises(ChangeDetectionError) as caught:
        changed_files(repo, since="release-9")
    assert "unknown git ref 'release-9'" in str(caught.value)
    assert caught.value.hint == "fetch the ref first: git fetch origin release-9"


def test_an_unknown_remote_branch_names_the_remote_in_the_fetch_hint(repo: Path) -> None:
    git(repo, "remote", "add", "upstream", str(repo))
    with pytest.raises(ChangeDetectionError) as caught:
        changed_files(repo, since="upstream/main")
    assert caught.value.hint == "fetch the ref first: git fetch upstream main", caught.value.one_line()


def test_an_origin_branch_is_fetched_from_origin(repo: Path) -> None:
    with pytest.raises(ChangeDetectionError) as caught:
        changed_files(repo, since="origin/main")
    assert caught.value.hint == "fetch the ref first: git fetch origin main", caught.value.one_line()


def test_a_ref_without_common_history_points_at_a_shallow_clone(repo: Path) -> None:
    git(repo, "switch", "--quiet", "--orphan", "unrelated")  # an empty tree, no parent
    write(repo, "other.txt")
    commit(repo, "no parent")
    with pytest.raises(ChangeDetectionError, match="no common commit") as caught:
        changed_files(repo, since="main")
    assert "git fetch --unshallow" in caught.value.hint


def test_an_option_is_not_a_ref(repo: Path) -> None:
    with pytest.raises(ChangeDetectionError, match="unknown git ref '--output=x'"):
        changed_files(repo, since="--output=x")


def test_outside_a_checkout_is_an_error_with_a_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # even when /tmp is in a checkout
    with pytest.raises(ChangeDetectionError, match="not a git repository") as caught:
        changed_files(tmp_path)
    assert caught.value.hint == "run it in a git checkout of the repository"


def test_paths_are_relative_to_a_root_below_the_top_of_the_repository(repo: Path) -> None:
    write(repo, "services/backend/app/main.py", "changed\n")
    write(repo, "README.md", "changed\n")
    assert changed_files(repo / "services") == ["backend/app/main.py"]


def config() -> Config:
    backend = {
        "path": "services/backend",
        "kind": "python",
        "port": 8000,
        "command": ["uvicorn"],
        "shared": ["libs/common/**", "requirements/*.txt"],
        "variants": {"cpu": {"default": True}, "cuda": {}},
    }
    frontend = {"path": "services/frontend", "kind": "node", "port": 8080, "command": ["node"], "shared": ["proto"]}
    return parse_config({**VALID, "services": {"backend": backend, "frontend": frontend}})


def test_files_in_a_service_folder_affect_that_service_only() -> None:
    affected = affected_services(config(), ["services/backend/app/main.py", "services/backend/app/db.py"])
    assert affected == {"backend": ("2 files in services/backend (services/backend/app/db.py, …)",)}
    one = affected_services(config(), ["services/frontend/src/app.ts"])
    assert one == {"frontend": ("1 file in services/frontend (services/frontend/src/app.ts)",)}


def test_a_folder_that_only_starts_like_a_service_folder_affects_nothing() -> None:
    assert affected_services(config(), ["services/backend-old/main.py", "services/backend"]) == {}


def test_shared_globs_affect_the_services_that_name_them() -> None:
    affected = affected_services(config(), ["libs/common/deep/x.py", "proto/api.proto"])
    assert affected == {"backend": ("shared file libs/common/deep/x.py",), "frontend": ("shared file proto/api.proto",)}
    many = affected_services(config(), ["requirements/torch.txt", "libs/common/a.py"])
    assert many == {"backend": ("2 shared files (libs/common/a.py, …)",)}


def test_cargohold_toml_affects_every_service_alongside_other_reasons() -> None:
    affected = affected_services(config(), ["cargohold.toml", "services/frontend/x.ts"])
    assert affected == {
        "backend": ("cargohold.toml changed",),
        "frontend": ("1 file in services/frontend (services/frontend/x.ts)", "cargohold.toml changed"),
    }


def test_unrelated_files_affect_nothing() -> None:
    assert affected_services(config(), ["README.md", "ci/src/cargohold/cli.py", "docs/cargohold.toml"]) == {}


@pytest.mark.parametrize(
    ("path", "glob", "wanted"),
    [
        ("libs/common/x.py", "libs/common/**", True),
        ("libs/common/a/b/x.py", "libs/common/**", True),
        ("libs/x.py", "libs/**/*.py", True),  # ** also spans no folder at all
        ("libs/a/b/x.py", "libs/**/*.py", True),
        ("libs/a/b/x.txt", "libs/**/*.py", False),
        ("requirements/a.txt", "requirements/*.txt", True),
        ("requirements/sub/a.txt", "requirements/*.txt", False),  # * stays within one folder
        ("proto/v1/api.proto", "proto", True),  # a folder covers what is inside it
        ("protocol/api.proto", "proto", False),
        ("pyproject.toml", "./pyproject.toml", True),
        ("x/pyproject.toml", "pyproject.toml", False),  # anchored at the repository's top
        ("libs/Common/x.py", "libs/common/**", False),  # case-sensitive, like git
    ],
)
def test_glob_matching(path: str, glob: str, wanted: bool) -> None:  # noqa: FBT001 (a parametrized expectation)
    assert matches_glob(path, glob) is wanted, f"wanted {wanted} for {path} against {glob}"


def test_the_ci_matrix_has_each_affected_service_with_its_default_variant() -> None:
    cfg = config()
    affected = affected_services(cfg, ["cargohold.toml"])
    assert ci_matrix(affected, cfg) == {
        "include": [{"service": "backend", "variant": "cpu"}, {"service": "frontend", "variant": "default"}]
    }


def test_nothing_affected_is_an_empty_matrix() -> None:
    assert ci_matrix({}, config()) == {"include": []}


def test_an_unknown_service_in_the_matrix_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown service 'db'; cargohold\.toml has backend, frontend"):
        ci_matrix({"db": ()}, config())
