"""Which services a change affects: changed files from git, mapped onto ``cargohold.toml``.

``changed_files`` is the only part that runs anything (``git``); the mapping
(``affected_services``) and the CI matrix (``ci_matrix``) are pure.

A file affects a service when it lies in the service's folder (``path``) or
matches one of its ``shared`` globs; ``cargohold.toml`` itself affects every
service. Anything else (the README, the ci/ package) affects none.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Final

from cargohold.config import CONFIG_FILE, Config
from cargohold.errors import CargoholdError

_STATUS: Final = ("status", "--porcelain=v1", "-z", "--untracked-files=all")
_RENAMED: Final = frozenset("RC")  # status codes followed by a second path, the original


class ChangeDetectionError(CargoholdError):
    """Git could not say what changed: not a checkout, an unknown ref, a shallow clone."""


def changed_files(root: Path, since: str | None = None) -> list[str]:
    """The files changed under ``root``, as sorted unique POSIX paths relative to it.

    Changed means staged, unstaged or untracked-but-not-ignored in the working
    tree, both sides of a rename, and, with ``since`` (a branch, tag or
    commit), every file changed between the merge base of ``since`` and HEAD.
    ``root`` is the folder of ``cargohold.toml``, normally the repository's top.
    """
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    paths = _status_paths(_git(root, "--no-optional-locks", *_STATUS))
    if since is not None:
        _check_ref(root, since)
        paths += _nul_split(_git(root, "diff", "--name-only", "--no-renames", "-z", f"{since}...HEAD"))
    return sorted({p.removeprefix(prefix) for p in paths if p.startswith(prefix)})


def _status_paths(output: bytes) -> list[str]:
    """The paths of ``git status --porcelain=v1 -z``: ``XY path``, then the original after a rename."""
    fields = iter(_nul_split(output))
    paths: list[str] = []
    for entry in fields:
        paths.append(entry[3:])
        if _RENAMED & set(entry[:2]):
            paths.append(next(fields, ""))
    return [p for p in paths if p]


def _check_ref(root: Path, since: str) -> None:
    """A ChangeDetectionError, with the fix, unless ``since`` and HEAD share history."""
    if since.startswith("-") or _run(root, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}").returncode:
        msg = f"unknown git ref {since!r}: this checkout has no such branch, tag or commit"
        raise ChangeDetectionError(msg, f"fetch the ref first: git fetch {_fetch_args(root, since)}")
    if _run(root, "merge-base", since, "HEAD").returncode != 0:
        msg = f"{since!r} and HEAD have no common commit (a shallow clone, or unrelated histories)"
        hint = "fetch the history: git fetch --unshallow (actions/checkout: fetch-depth: 0)"
        raise ChangeDetectionError(msg, hint)


def _fetch_args(root: Path, ref: str) -> str:
    """``upstream/main`` → ``upstream main`` (a known remote, or origin); another ref → ``origin <ref>``."""
    remote, _, branch = ref.partition("/")
    remotes = {"origin", *_run(root, "remote").stdout.decode().split()}
    return f"{remote} {branch}" if branch and remote in remotes else f"origin {ref}"


def _git(root: Path, *args: str) -> bytes:
    """Git's standard output; ChangeDetectionError with git's own ``fatal:`` line on failure."""
    done = _run(root, *args)
    if done.returncode == 0:
        return done.stdout
    stderr = done.stderr.decode(errors="replace").strip()
    fatal = next((line for line in stderr.splitlines() if line.startswith("fatal:")), stderr or "no output")
    if "not a git repository" in fatal:
        hint = "run it in a git checkout of the repository"
    elif "dubious ownership" in fatal:
        hint = f"trust the checkout: git config --global --add safe.directory {root}"
    else:
        hint = "run the same git command in the checkout to see why"
    raise ChangeDetectionError(f"git failed in {root}: {fatal}", hint)


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LC_ALL": "C"}  # git's messages in English, for the checks above
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False, env=env)
    except FileNotFoundError:
        raise ChangeDetectionError("git is not installed", "install git (apt-get install git)") from None


def _nul_split(output: bytes) -> list[str]:
    return [os.fsdecode(field) for field in output.split(b"\0") if field]


def affected_services(config: Config, changed: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each service a change affects → why, one short phrase per rule with an example path.

    Services are in ``cargohold.toml``'s order; unaffected ones are absent.
    """
    paths = sorted({p.removeprefix("./") for p in changed})
    affected: dict[str, tuple[str, ...]] = {}
    for name, service in config.services.items():
        inside = [p for p in paths if _inside(p, service.path)]
        shared = [p for p in paths if any(matches_glob(p, glob) for glob in service.shared)]
        reasons = (
            *([f"{_count(inside, 'file')} in {service.path} ({_examples(inside)})"] if inside else []),
            *([_shared_reason(shared)] if shared else []),
            *([f"{CONFIG_FILE} changed"] if CONFIG_FILE in paths else []),
        )
        if reasons:
            affected[name] = reasons
    return affected


def matches_glob(path: str, glob: str) -> bool:
    """True when ``path`` or one of its folders matches ``glob`` (fnmatch per segment; ``**`` spans folders)."""
    parts = PurePosixPath(path).parts
    pattern = PurePosixPath(glob.removeprefix("./")).parts
    return any(_match(parts[:end], pattern) for end in range(1, len(parts) + 1))


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[skip:], rest) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _shared_reason(paths: Sequence[str]) -> str:
    return f"shared file {paths[0]}" if len(paths) == 1 else f"{len(paths)} shared files ({_examples(paths)})"


def _count(paths: Sequence[str], noun: str) -> str:
    return f"{len(paths)} {noun}{'' if len(paths) == 1 else 's'}"


def _examples(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{paths[0]}, …"


def ci_matrix(affected: Mapping[str, object], config: Config) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions matrix: one ``{service, variant}`` per affected service, its default variant.

    Entries follow ``affected``'s order; a name ``cargohold.toml`` lacks is a ConfigError.
    Nothing affected gives ``{"include": []}``, which GitHub refuses to run as a
    matrix: skip the job when the list is empty.
    """
    return {"include": [{"service": name, "variant": config.service(name).variant(None)[0]} for name in affected]}
