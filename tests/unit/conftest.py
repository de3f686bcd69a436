"""Unit tests see no cargohold overrides from the calling environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_cargohold_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CARGOHOLD_IMAGE_") or name in {
            "CARGOHOLD_REGISTRY",
            "CARGOHOLD_CA_CERTIFICATES",
            "CARGOHOLD_OVERRIDES",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("CARGOHOLD_USER_CONFIG", "/nonexistent/cargohold-overrides.toml")  # no machine overrides
