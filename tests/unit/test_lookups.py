"""Registry lookups before a run: an unreachable registry is a miss, said once, asked once."""

from __future__ import annotations

import logging
import socket

import pytest

from cargohold.plan import lookup_all


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_registry_is_a_miss_for_every_reference_said_once(caplog: pytest.LogCaptureFixture) -> None:
    host = f"127.0.0.1:{_closed_port()}"
    refs = [f"{host}/demo/backend:cpu-{n}" for n in range(6)]
    with caplog.at_level(logging.DEBUG, logger="cargohold"):
        found = lookup_all(refs)
    assert found == dict.fromkeys(refs, False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert host in warnings[0].getMessage()
    # Only the first reference was tried (and retried); the other five were not asked at all.
    tried = {r.getMessage().split()[3] for r in caplog.records if "retrying" in r.getMessage()}
    assert tried == {f"http://{host}/v2/demo/backend/manifests/cpu-0"}
