"""A layer per locked package: the lockfile read as packages, each with its own key and cache entry (pure).

With ``python.layer-per-package = true`` the dependency stage is not one
``pip install -r lockfile`` in one layer but the lockfile's packages, each in
a layer of its own, stacked on a venv skeleton:

    <cache namespace>/cache/<service>/<variant>/packages:<name>-<key>   one package's files under /opt/venv
    <cache namespace>/cache/<service>/<variant>/packages:venv-<key>     the empty venv (and its heavy .pth)

A package's key covers its requirement line alone (name, pinned version,
hashes, marker), the lockfile's index options and the builder; the other lines
of the lockfile do not change it. So a lockfile change installs only the
packages whose lines changed, and every other layer is the same blob as
before: the stage's entry is then *stacked* in the registry from the parts'
layers (``assemble.stack_in_registry``), as the runtime is.

Only fully pinned lockfiles qualify (every requirement ``name==version``,
no ``-r``/``-c``/``-e`` includes, no URLs or paths); anything else is built as
one layer, as without the setting (``plan`` returns None and says why).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final

PACKAGES_REPOSITORY: Final = "packages"  # beside the stage entries: cache/<service>/<variant>/packages
SKELETON: Final = "venv"  # the part that is the empty venv (no package is named "venv" here: see _name_of)
# Options that apply to the whole file and change what any line installs.
GLOBAL_OPTIONS: Final = (
    "--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--no-index", "--pre",
    "--only-binary", "--no-binary", "--prefer-binary", "--trusted-host",
)  # fmt: skip
_PIN: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*[^\s;,<>!~=]+\s*(;.*)?$")


@dataclass(frozen=True)
class LockedPackage:
    """One requirement of the lockfile: its normalized name, its whole line (hashes too) and its key."""

    name: str
    requirement: str
    key: str

    @property
    def tag(self) -> str:
        """The package's cache tag in the packages repository."""
        return f"{self.name}-{self.key[:40]}"

    @property
    def pin(self) -> str:
        """The requirement without its hashes (``six==1.16.0``), for people."""
        return self.requirement.split(" --hash")[0]


@dataclass(frozen=True)
class PackagePlan:
    """The lockfile as parts: the venv skeleton's key, the index options, the packages in file order."""

    skeleton_key: str
    options: tuple[str, ...]
    packages: tuple[LockedPackage, ...]

    @property
    def skeleton_tag(self) -> str:
        """The venv skeleton's cache tag in the packages repository."""
        return f"{SKELETON}-{self.skeleton_key[:40]}"

    def requirements_file(self, packages: tuple[LockedPackage, ...]) -> str:
        """A requirements file for some of the packages, with the lockfile's options."""
        return "".join(f"{line}\n" for line in (*self.options, *(p.requirement for p in packages)))


class NotPinnedError(ValueError):
    """The lockfile has a line that is not a plain pin: it is built as one layer."""


def plan(lock_text: str, basis: str) -> PackagePlan:
    """The packages of a lockfile, each keyed by ``basis`` (the builder's key) and its own line.

    Raises NotPinnedError for a lockfile this cannot split (the message names the line).
    """
    options: list[str] = []
    packages: list[tuple[str, str]] = []
    for line in _logical_lines(lock_text):
        if line.startswith("-"):
            if line.split()[0].split("=")[0] not in GLOBAL_OPTIONS:
                raise NotPinnedError(f"{line.split()[0]} (only index options can be split per package)")
            options.append(line)
            continue
        requirement = line.split(" --hash")[0].strip()
        if not _PIN.match(requirement):
            raise NotPinnedError(f"{requirement!r} is not pinned with ==")
        packages.append((_name_of(requirement), line))
    names = [name for name, _ in packages]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise NotPinnedError(f"{', '.join(duplicates)} listed more than once")
    locked = tuple(
        LockedPackage(name, line, _hash({"basis": basis, "requirement": line, "options": options}))
        for name, line in packages
    )
    return PackagePlan(_hash({"basis": basis, "part": SKELETON}), tuple(options), locked)


def is_packages_repository(repository: str) -> bool:
    """True for a service variant's packages repository (``…/cache/<service>/<variant>/packages``)."""
    *_, cache, _service, _variant, last = ["", "", "", "", *repository.split("/")]
    return cache == "cache" and last == PACKAGES_REPOSITORY


def _logical_lines(text: str) -> list[str]:
    """The file's lines with comments dropped and continuations joined, whitespace collapsed."""
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = (re.sub(r"(^|\s)#.*$", "", line) for line in joined.splitlines())
    return [" ".join(line.split()) for line in lines if line.strip()]


def _name_of(requirement: str) -> str:
    """The PEP 503 normalized name; the skeleton's part name is kept apart with a prefix."""
    name = re.sub(r"[-_.]+", "-", re.split(r"[\[=\s;]", requirement, maxsplit=1)[0]).lower()
    return f"pkg-{name}" if name == SKELETON else name


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
