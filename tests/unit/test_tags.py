"""The tag policy: semver, moving tags only for the highest release, pre-releases, sha, branch, variants."""

from __future__ import annotations

import pytest

from cargohold.errors import ConfigError
from cargohold.tags import TagRequest, Version, branch_tag, release_tags

SHA = "0123456789abcdef0123456789abcdef01234567"


def _tags(version: str | None = None, *, released: tuple[str, ...] = (), variant: str = "cpu",
          default: bool = True, branch: str | None = None) -> list[str]:  # fmt: skip
    return release_tags(TagRequest(SHA, variant, default, version, branch, released))


def test_a_first_stable_release_moves_every_tag() -> None:
    assert _tags("1.4.0", default=False) == ["1.4.0-cpu", "1.4-cpu", "1-cpu", "latest-cpu", "sha-0123456-cpu"]


def test_the_default_variant_gets_plain_and_suffixed_tags() -> None:
    tags = _tags("1.4.0")
    assert tags[:5] == ["1.4.0", "1.4", "1", "latest", "sha-0123456"]
    assert "latest-cpu" in tags
    assert "1.4.0-cpu" in tags


def test_a_backport_moves_only_its_own_line() -> None:
    tags = _tags("1.3.5", released=("1.3.4", "1.4.0"), default=False, variant="cuda")
    assert tags == ["1.3.5-cuda", "1.3-cuda", "sha-0123456-cuda"]


def test_an_older_major_does_not_move_latest() -> None:
    assert _tags("1.9.0", released=("2.0.0",), default=False) == ["1.9.0-cpu", "1.9-cpu", "1-cpu", "sha-0123456-cpu"]


def test_a_pre_release_never_moves_a_tag() -> None:
    assert _tags("1.5.0-rc.1", released=("1.4.0",), default=False) == ["1.5.0-rc.1-cpu", "sha-0123456-cpu"]


def test_a_pre_release_does_not_hold_back_the_release() -> None:
    assert "latest" in _tags("1.5.0", released=("1.5.0-rc.1", "1.4.0"))


def test_semver_order() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    assert sorted(ordered, key=Version.parse) == ordered
    assert str(Version.parse("v2.10.3")) == "2.10.3"


def test_a_branch_build_gets_the_branch_and_sha() -> None:
    assert _tags(branch="feature/Add X") == ["feature-Add-X", "sha-0123456", "feature-Add-X-cpu", "sha-0123456-cpu"]
    assert branch_tag("///") == "branch"


@pytest.mark.parametrize("bad", ["1.4", "01.2.3", "1.2.3-", "latest", "1.2.3.4", ""])
def test_malformed_versions_are_rejected_with_the_expected_form(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"is not semver; write MAJOR\.MINOR\.PATCH"):
        _tags(bad)


def test_a_malformed_sha_is_rejected() -> None:
    with pytest.raises(ConfigError, match="is not a git sha"):
        release_tags(TagRequest("main", "cpu", default_variant=True))
