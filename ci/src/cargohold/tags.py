"""The tag policy of a release: which tags an image gets, and which moving tags it may move (pure).

- A stable release ``1.4.0`` is tagged ``1.4.0``, and moves ``1.4``, ``1`` and
  ``latest`` only when it is the highest release in that line: a backport
  ``1.3.5`` published after ``1.4.0`` moves ``1.3`` but neither ``1`` nor
  ``latest``.
- A pre-release (``1.5.0-rc.1``) gets its exact tag only, never a moving one.
- Every image also gets ``sha-<7 hex>`` of its commit; a build that is not a
  release gets its branch's name instead of version tags.
- A variant that is not the service's default gets every tag with its suffix
  (``1.4.0-cuda``, ``latest-cuda``); the default variant gets them suffixed and
  plain; a service with a single variant gets them plain only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cargohold.errors import ConfigError

_SEMVER: Final = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_SHA: Final = re.compile(r"^[0-9a-f]{7,40}$")
_TAG_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, order=True)
class Version:
    """A semantic version; ordered as semver orders them (a pre-release sorts before its release)."""

    major: int
    minor: int
    patch: int
    stable: bool  # no pre-release part (sorts after any pre-release of the same numbers)
    pre: tuple[tuple[int, int | str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        """``1.4.0``, ``v1.4.0``, ``1.5.0-rc.1``; ConfigError saying what a version looks like otherwise."""
        match = _SEMVER.match(text.strip())
        if match is None:
            msg = f"version {text!r} is not semver; write MAJOR.MINOR.PATCH, e.g. 1.4.0 or 1.5.0-rc.1"
            raise ConfigError([msg], "command line")
        major, minor, patch, pre = match.groups()
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
        return cls(int(major), int(minor), int(patch), stable=pre is None, pre=parts)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text + ("-" + ".".join(str(p[1]) for p in self.pre) if self.pre else "")


@dataclass(frozen=True)
class TagRequest:
    """What decides an image's tags."""

    sha: str  # the commit
    variant: str
    default_variant: bool
    version: str | None = None  # a release; None for a branch build
    branch: str | None = None
    released: tuple[str, ...] = ()  # versions already published (to decide what may move)
    sole_variant: bool = False  # a service with one variant gets no suffixed tags at all


def release_tags(request: TagRequest) -> list[str]:
    """Every tag the image gets, in a stable order: exact first, then moving ones."""
    if not _SHA.match(request.sha):
        raise ConfigError([f"commit {request.sha!r} is not a git sha (7 to 40 lower-case hex digits)"], "command line")
    base = [f"sha-{request.sha[:7]}"]
    if request.version is not None:
        base = [*_version_tags(Version.parse(request.version), request.released), *base]
    elif request.branch:
        base = [branch_tag(request.branch), *base]
    if request.sole_variant:
        return base
    suffixed = [f"{tag}-{request.variant}" for tag in base]
    return [*base, *suffixed] if request.default_variant else suffixed


def _version_tags(version: Version, released: Iterable[str]) -> list[str]:
    exact = [str(version)]
    if not version.stable:
        return exact  # a pre-release never moves a tag
    stable = [v for v in (Version.parse(r) for r in released) if v.stable]
    tags = exact
    if all(version >= v for v in stable if (v.major, v.minor) == (version.major, version.minor)):
        tags.append(f"{version.major}.{version.minor}")
    if all(version >= v for v in stable if v.major == version.major):
        tags.append(f"{version.major}")
    if all(version >= v for v in stable):
        tags.append("latest")
    return tags


def branch_tag(branch: str) -> str:
    """A branch name as a tag: ``feature/Add X`` → ``feature-Add-X`` (at most 128 characters)."""
    tag = _TAG_UNSAFE.sub("-", branch.strip()).strip("-.") or "branch"
    return tag[:128]
