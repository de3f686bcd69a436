"""A second test host on this machine: a network namespace with its own engine, sharing only the registry.

Two native engines cannot share one network namespace (each starts a dnsmasq
on port 53 of every address). So the second runner gets a namespace of its
own, made here with ``ip netns`` and a veth pair, NAT to the outside for
package registries, and a small TCP relay so that the host's loopback registry
answers at the host end of the veth pair. Everything is torn down afterwards.
Only addresses this test creates are used. Each ``slot`` has a subnet of its
own, so several hosts (a test and a benchmark, or two runners) can exist at once
as long as each uses a different slot and name.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import socketserver
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SUBNET_BASE: Final = 77  # slot n uses 10.201.(77+n).0/30


def addresses(slot: int) -> tuple[str, str, str]:
    """The host end, the namespace end, and the /30 subnet of a slot."""
    net = f"10.201.{SUBNET_BASE + slot}"
    return f"{net}.1", f"{net}.2", f"{net}.0/30"


@dataclass(frozen=True)
class TestHost:
    """What a runner inside the namespace uses."""

    netns: str
    registry: str  # the host's registry, as the namespace reaches it
    engine_config: Path  # engine.json marking that registry plain HTTP
    __test__ = False  # not a pytest test class


@contextlib.contextmanager
def second_host(name: str, work: Path, registry_port: int = 5000, slot: int = 0) -> Iterator[TestHost]:
    """Create the namespace, its network and the registry relay; remove them all on exit."""
    host_addr, ns_addr, subnet = addresses(slot)
    iptables = shutil.which("iptables-legacy") or "iptables"
    veth = f"vh-{name}"[:15]
    nat = ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", veth, "-j", "MASQUERADE"]
    forward = [["FORWARD", "-i", veth, "-j", "ACCEPT"], ["FORWARD", "-o", veth, "-j", "ACCEPT"]]
    relay = Relay((host_addr, registry_port), ("127.0.0.1", registry_port))
    _remove(name, iptables, nat, forward)  # what a run that died part-way may have left
    try:
        _sh("ip", "netns", "add", name)
        _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _sh("ip", "addr", "add", f"{host_addr}/30", "dev", veth)
        _sh("ip", "link", "set", veth, "up")
        for step in (["addr", "add", f"{ns_addr}/30", "dev", "eth0"], ["link", "set", "eth0", "up"],
                     ["link", "set", "lo", "up"], ["route", "add", "default", "via", host_addr]):  # fmt: skip
            _sh("ip", "netns", "exec", name, "ip", *step)
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        _sh(iptables, nat[0], nat[1], "-A", *nat[2:])
        for rule in forward:
            _sh(iptables, "-I", *rule)
        netns_etc = Path("/etc/netns") / name
        netns_etc.mkdir(parents=True, exist_ok=True)
        shutil.copy2("/etc/resolv.conf", netns_etc / "resolv.conf")  # the host's resolver, reached through NAT
        relay.start()
        config = work / "engine.json"
        config.write_text(json.dumps({"registries": {f"{host_addr}:{registry_port}": {"http": True}}}))
        yield TestHost(name, f"{host_addr}:{registry_port}", config)
    finally:
        relay.stop()
        _remove(name, iptables, nat, forward)


def _remove(name: str, iptables: str, nat: list[str], forward: list[list[str]]) -> None:
    """Undo everything ``second_host`` sets up; whatever is not there is skipped."""
    with contextlib.suppress(subprocess.CalledProcessError):
        _sh(iptables, nat[0], nat[1], "-D", *nat[2:])
    for rule in forward:
        with contextlib.suppress(subprocess.CalledProcessError):
            _sh(iptables, "-D", *rule)
    with contextlib.suppress(subprocess.CalledProcessError):
        _sh("ip", "netns", "delete", name)  # takes the veth pair with it
    shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


class Relay:
    """A TCP relay from ``listen`` to ``target``; ``on_bytes(direction, n)`` sees each chunk ("up" = to target)."""

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        on_bytes: Callable[[str, int], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(relay.target, timeout=timeout) as upstream:
                    for end in (self.request, upstream):  # relay each chunk at once, as a registry sends it
                        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    _pump(self.request, upstream, on_bytes, join_timeout=2 * timeout)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            # socketserver's default backlog is 5: a client opening 20 connections at once (a
            # lockfile's packages looked up side by side) lost SYNs and waited 1 s to resend them.
            request_queue_size = 128

        self.server = Server(listen, Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.server.server_bind()
        self.server.server_activate()
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def _pump(a: socket.socket, b: socket.socket, on_bytes: Callable[[str, int], None] | None, join_timeout: float) -> None:
    """Copy both ways until either side closes (``a`` → ``b`` is "up")."""

    def copy(src: socket.socket, dst: socket.socket, direction: str) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(262144):
                dst.sendall(data)
                if on_bytes is not None:
                    on_bytes(direction, len(data))
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(b, a, "down"), daemon=True)
    other.start()
    copy(a, b, "up")
    other.join(timeout=join_timeout)
