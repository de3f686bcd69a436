"""Image references, parsed and printed: pure, no network.

``registry/repository[:tag][@digest]``, with Docker's rule for what counts as
a registry host (the first component holds a ``.`` or ``:`` or is
``localhost``) and Docker Hub's defaults for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from cargohold.errors import ConfigError

DOCKER_HUB: Final = "docker.io"
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``text``; ConfigError naming the reference when it is malformed."""
        rest, _, digest = text.strip().partition("@")
        name, tag = _split_tag(rest)
        first, _, remainder = name.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, remainder
        else:
            registry, repository = DOCKER_HUB, name
            if "/" not in repository:
                repository = f"library/{repository}"
        ref = cls(registry, repository, tag or None, digest or None)
        if problem := ref._problem():
            raise ConfigError([f"image reference {text!r}: {problem}"])
        return ref

    def _problem(self) -> str | None:
        if not all(_COMPONENT.match(part) for part in self.repository.split("/")):
            return "the repository must be lower-case letters, digits and . _ - separators"
        if self.tag is not None and not _TAG.match(self.tag):
            return "a tag is letters, digits, '.', '_' and '-', up to 128 characters"
        if self.digest is not None and not _DIGEST.match(self.digest):
            return "a digest is 'sha256:' and 64 lower-case hex digits"
        return None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> Reference:
        """The same repository under ``tag`` (no digest)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """The same reference pinned to ``digest``."""
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_tag(name: str) -> tuple[str, str]:
    """Split ``name:tag``; a ``:`` before the last ``/`` is a registry port, not a tag."""
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return name, ""
