"""The native engine leaves the host alone: DNS, sockets, mounts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagger import dag

from cargohold.bootstrap import BootstrapReport
from cargohold.config import Config
from cargohold.engine import EngineKind, native_engine_dir
from cargohold.native_engine import HOST_CA_DIR, NativeEngine

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def native(bootstrapped: BootstrapReport) -> NativeEngine:
    if bootstrapped.engine.kind is not EngineKind.NATIVE:
        pytest.skip(f"the engine is {bootstrapped.engine.kind.value}, not native")
    engine_dir = native_engine_dir()
    assert engine_dir is not None
    return NativeEngine.at(engine_dir)


async def test_host_resolv_conf_is_untouched_while_the_engine_runs(native: NativeEngine, dagger_session: str) -> None:
    assert native.is_up()
    assert "container ns resolver" not in Path("/etc/resolv.conf").read_text()


async def test_engine_runs_in_its_own_mount_namespace(native: NativeEngine) -> None:
    pid = native.daemon.pid()
    assert pid is not None
    engine_pid = _engine_child(pid)
    assert Path(f"/proc/{engine_pid}/ns/mnt").readlink() != Path("/proc/self/ns/mnt").readlink()


async def test_the_fixed_engine_sockets_are_not_on_the_host(native: NativeEngine) -> None:
    assert not Path("/run/dagger/engine.sock").exists()
    assert not Path("/run/buildkit/buildkitd.sock").exists()
    assert native.socket.is_socket()


async def test_the_engine_does_not_copy_the_host_cas_into_every_exec(
    native: NativeEngine, dagger_session: str, config: Config
) -> None:
    host_cas = sorted(p.name for p in Path(HOST_CA_DIR).glob("*.crt"))
    if not host_cas:
        pytest.skip(f"{HOST_CA_DIR} is empty on this host: the engine would copy nothing anyway")
    engine_pid = _engine_child(native.daemon.pid() or 0)
    assert list(Path(f"/proc/{engine_pid}/root{HOST_CA_DIR}").iterdir()) == []
    seen = await dag.container().from_(config.images.python).with_exec(["ls", "-A", HOST_CA_DIR]).stdout()
    assert seen.split() == [], f"wanted no injected CAs in the exec, got {seen.split()} (host has {host_cas})"


async def test_a_running_engine_is_reused(native: NativeEngine) -> None:
    pid = native.daemon.pid()
    again = native.ensure_running()
    assert again.reused
    assert native.daemon.pid() == pid


def _engine_child(pid: int) -> int:
    """The dagger-engine process: the started pid itself after ``exec``."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"dagger-engine" in cmdline
    return pid
