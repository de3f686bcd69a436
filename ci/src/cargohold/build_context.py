"""Build-context hygiene: what of a service folder reaches the build, and what must not.

A service's build input is its own folder, narrowed by ``context.include`` /
``context.exclude``. Before anything is sent to the engine, the check walks
that context and fails, naming the paths, on what should never be in it:
a virtualenv (any folder with ``pyvenv.cfg``), ``node_modules``, ``.git``,
model weight files, and files over ``context.max-file-size``. Tool caches
(``__pycache__`` and friends) are left out silently: they are never inputs.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from cargohold.config import ContextConfig

ALWAYS_EXCLUDED: Final = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".DS_Store")
WEIGHT_SUFFIXES: Final = (".pt", ".safetensors", ".onnx", ".ckpt", ".h5", ".gguf")
LARGE_WEIGHT_SUFFIXES: Final = (".bin", ".pth", ".pkl")  # weights only when large (.pth is also a path file)
LARGE_WEIGHT_BYTES: Final = 1_000_000


@dataclass(frozen=True)
class ContextFile:
    """One file of the context, relative to the service folder."""

    path: str
    size: int


@dataclass(frozen=True)
class ContextProblem:
    """Something that must not be in a build context."""

    path: str
    size: int
    reason: str


@dataclass(frozen=True)
class ContextReport:
    """The context of one service: its size and what is wrong with it."""

    folder: str
    files: int
    total_bytes: int
    problems: tuple[ContextProblem, ...]

    @property
    def ok(self) -> bool:
        """True when nothing forbidden is in the context."""
        return not self.problems

    def lines(self) -> list[str]:
        """One summary line, then one line per problem."""
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        head = f"context {self.folder}: {self.files} files, {self.total_bytes / 1e6:.1f} MB — {verdict}"
        return [head, *(f"  {p.path} ({p.size / 1e6:.1f} MB): {p.reason}" for p in self.problems)]


def engine_filters(rules: ContextConfig) -> tuple[list[str] | None, list[str]]:
    """``(include, exclude)`` for the engine's directory filters: the same context the check saw."""
    exclude = [f"**/{name}" for name in ALWAYS_EXCLUDED] + list(rules.exclude)
    include = None if rules.include == ("**",) else list(rules.include)
    return include, exclude


def is_excluded(path: str, rules: ContextConfig) -> bool:
    """True when ``path`` (or a folder above it) is excluded, or nothing includes it."""
    parts = PurePosixPath(path).parts
    if any(part in ALWAYS_EXCLUDED for part in parts):
        return True
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in rules.exclude):
        return True
    return not any(fnmatch.fnmatch(path, p) or p in prefixes for p in rules.include)


def check(files: Iterable[ContextFile], rules: ContextConfig, folder: str = ".") -> ContextReport:
    """Judge a context listing (pure): which paths must not be there, and why."""
    listing = list(files)
    venvs = {str(PurePosixPath(f.path).parent) for f in listing if PurePosixPath(f.path).name == "pyvenv.cfg"}
    problems: list[ContextProblem] = []
    dirs: dict[tuple[str, str], int] = {}  # (forbidden folder, reason) -> bytes inside it
    for f in listing:
        if (found := _forbidden_dir(f.path, venvs)) is not None:
            dirs[found] = dirs.get(found, 0) + f.size
        elif (reason := _file_problem(f, int(rules.max_file_size))) is not None:
            problems.append(ContextProblem(f.path, f.size, reason))
    problems += [ContextProblem(path, size, reason) for (path, reason), size in dirs.items()]
    total = sum(f.size for f in listing)
    return ContextReport(folder, len(listing), total, tuple(sorted(problems, key=lambda p: p.path)))


def scan(folder: Path, rules: ContextConfig) -> ContextReport:
    """Walk ``folder`` as the build would see it, then ``check`` it."""
    return check(walk(folder, rules), rules, str(folder))


def walk(folder: Path, rules: ContextConfig) -> Iterator[ContextFile]:
    """The files of the context as the engine will see them (excluded folders are not entered)."""
    for root, dirs, names in os.walk(folder):
        rel_root = Path(root).relative_to(folder).as_posix()
        prefix = "" if rel_root == "." else f"{rel_root}/"
        dirs[:] = [d for d in dirs if not _excluded_dir(prefix + d, rules)]
        for name in names:
            path = prefix + name
            full = Path(root, name)
            if not is_excluded(path, rules) and not full.is_symlink():
                yield ContextFile(path, full.stat().st_size)


def _excluded_dir(path: str, rules: ContextConfig) -> bool:
    parts = PurePosixPath(path).parts
    return any(p in ALWAYS_EXCLUDED for p in parts) or any(fnmatch.fnmatch(path, p) for p in rules.exclude)


def _forbidden_dir(path: str, venvs: set[str]) -> tuple[str, str] | None:
    """The forbidden folder ``path`` lies in, and why; None when it lies in none."""
    parts = PurePosixPath(path).parts
    for i, part in enumerate(parts[:-1]):
        here = "/".join(parts[: i + 1])
        if part == "node_modules":
            return here, "node_modules in the build context: install dependencies in the build, not on the host"
        if part == ".git":
            return here, "a git folder in the build context"
        if here in venvs:
            return here, "a virtualenv in the build context: the build makes its own"
    return None


def _file_problem(f: ContextFile, max_size: int) -> str | None:
    suffix = PurePosixPath(f.path).suffix
    if f.path == "pyvenv.cfg":
        return "the service folder itself is a virtualenv"
    if suffix in WEIGHT_SUFFIXES or (suffix in LARGE_WEIGHT_SUFFIXES and f.size > LARGE_WEIGHT_BYTES):
        return "model weights in the build context: bake them in a build stage or fetch them there"
    if f.size > max_size:
        return f"larger than context.max-file-size ({max_size / 1e6:.1f} MB)"
    return None
