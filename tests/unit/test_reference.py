from __future__ import annotations

import pytest

from cargohold.errors import ConfigError
from cargohold.reference import Reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None),
        ("acme/app", "docker.io", "acme/app", None, None),
        ("127.0.0.1:5000/cargohold/base/python", "127.0.0.1:5000", "cargohold/base/python", None, None),
        (f"127.0.0.1:5000/x/y:tag@{DIGEST}", "127.0.0.1:5000", "x/y", "tag", DIGEST),
        (f"ghcr.io/acme/backend@{DIGEST}", "ghcr.io", "acme/backend", None, DIGEST),
        ("localhost/app:1", "localhost", "app", "1", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_print_round_trips() -> None:
    text = f"127.0.0.1:5000/x/y:tag@{DIGEST}"
    assert str(Reference.parse(text)) == text


def test_with_tag_drops_the_digest() -> None:
    ref = Reference.parse(f"ghcr.io/acme/app@{DIGEST}").with_tag("1.4.0")
    assert str(ref) == "ghcr.io/acme/app:1.4.0"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Python:3.11", "lower-case"),
        ("python:3.11@sha256:abc", "64 lower-case hex"),
        ("python:-bad", "a tag is"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Reference.parse(text)
