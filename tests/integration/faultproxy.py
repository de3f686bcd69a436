"""A fault-injecting proxy in front of the real local registry, on loopback.

Each request is forwarded to the registry unless a rule picks it. A rule
matches a method, a path (regex) and optionally a client (a regex on the
User-Agent: ``python-httpx`` is cargohold's own client, anything else the
engine), lets the first ``skip`` matching requests through, and then injects
its fault into the next ``times`` ones (every one when ``times`` is None):

- ``500`` / ``503``: that status, an empty body;
- ``429``: Too Many Requests with ``Retry-After``;
- ``403``: Forbidden (a permanent error);
- ``reset``: the connection is closed with a TCP RST, nothing answered;
- ``stall``: nothing answered until ``stall`` seconds pass (or ``release()``),
  then the request is forwarded (``then_forward``) or the connection dropped;
- ``corrupt``: the upstream answer with one byte flipped (same length).

With ``require_auth`` the proxy asks for basic auth (``401`` with
``WWW-Authenticate: Basic``) and only forwards requests that carry exactly
those credentials, so a client's credentials are really exercised; the
header is stripped before forwarding. The proxy counts what it saw and what
it injected, for the reliability table.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from cargohold.local_registry import local_registry_address

Fault = Literal["500", "503", "429", "403", "reset", "stall", "corrupt"]
_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})
_CHUNK: Final = 1 << 20


@dataclass
class Rule:
    """Inject ``fault`` into requests matching method, path and client (after ``skip`` of them)."""

    method: str  # regex over the method, e.g. "PUT" or "GET|HEAD"
    path: str  # regex searched in the path (with its query)
    fault: Fault
    times: int | None = 1
    skip: int = 0
    client: str | None = None  # regex searched in the User-Agent
    retry_after: int = 1
    stall: float = 30.0
    then_forward: bool = False  # after a stall: forward the request instead of dropping it
    matched: int = 0
    injected: int = 0
    hit: threading.Event = field(default_factory=threading.Event)  # set when it first injects

    def picks(self, method: str, path: str, agent: str) -> bool:
        """True when this request gets the fault (counts the match)."""
        if not re.fullmatch(self.method, method) or not re.search(self.path, path):
            return False
        if self.client is not None and not re.search(self.client, agent):
            return False
        self.matched += 1
        if self.matched <= self.skip or (self.times is not None and self.injected >= self.times):
            return False
        self.injected += 1
        self.hit.set()
        return True


@dataclass
class FaultProxy:
    """The proxy's rules and counters; ``address`` is ``127.0.0.1:<port>`` while it runs."""

    rules: list[Rule] = field(default_factory=list)
    require_auth: tuple[str, str] | None = None
    address: str = ""
    requests: int = 0
    authorized: int = 0
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)  # (method, path) → times
    agents: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    faulted: list[tuple[tuple[str, str], Fault]] = field(default_factory=list)  # (method, path), fault

    @property
    def faults(self) -> int:
        """How many faults were injected in all."""
        return sum(r.injected for r in self.rules)

    @property
    def retries(self) -> int:
        """Requests repeated after a fault: for every faulted (method, path), the tries beyond the first."""
        faulted = {key for key, _ in self.faulted}
        return sum(n - 1 for key, n in self.seen.items() if key in faulted and n > 1)

    def release(self) -> None:
        """End every stall now."""
        self.released.set()

    def decide(self, method: str, path: str, agent: str) -> Rule | None:
        """Count the request; the rule whose fault it gets, if any."""
        with self.lock:
            self.requests += 1
            self.seen[method, path] += 1
            self.agents.add(agent)
            for rule in self.rules:
                if rule.picks(method, path, agent):
                    self.faulted.append(((method, path), rule.fault))
                    return rule
        return None

    def counts(self) -> dict[str, int]:
        """The numbers the reliability table shows."""
        return {"requests": self.requests, "faults": self.faults, "retries": self.retries}


class _Handler(http.server.BaseHTTPRequestHandler):
    proxy: FaultProxy
    upstream: tuple[str, int]

    def _serve(self) -> None:
        agent = self.headers.get("User-Agent", "")
        if not self._authorized():
            self._status(401, {"WWW-Authenticate": 'Basic realm="faultproxy"'})
            return
        rule = self.proxy.decide(self.command, self.path, agent)
        if rule is None:
            self._forward()
        elif rule.fault == "reset":
            self._reset()
        elif rule.fault == "stall":
            self.proxy.released.wait(rule.stall)
            if rule.then_forward:
                self._forward()
            else:
                self._reset()
        elif rule.fault == "corrupt":
            self._forward(corrupt=True)
        elif rule.fault == "429":
            self._drain()
            self._status(429, {"Retry-After": str(rule.retry_after)})
        else:
            self._drain()
            self._status(int(rule.fault))

    def _authorized(self) -> bool:
        if self.proxy.require_auth is None:
            return True
        user, password = self.proxy.require_auth
        wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization") != wanted:
            self._drain()
            return False
        with self.proxy.lock:
            self.proxy.authorized += 1
        return True

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._body()

    def _forward(self, *, corrupt: bool = False) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "authorization"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*self.upstream, timeout=300)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if corrupt and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            for start in range(0, len(data), _CHUNK):
                self.wfile.write(data[start : start + _CHUNK])

    def _status(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server names them

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # a client that went away mid-answer (an interrupted run)
            super().handle()

    def log_message(self, *_: object) -> None:
        return

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()


@contextlib.contextmanager
def fault_proxy(*rules: Rule, require_auth: tuple[str, str] | None = None) -> Iterator[FaultProxy]:
    """Run a proxy with these rules in front of the local registry; stopped (and stalls released) on exit."""
    proxy = FaultProxy(list(rules), require_auth)
    host, port = local_registry_address().rsplit(":", 1)
    handler = type("FaultProxyHandler", (_Handler,), {"proxy": proxy, "upstream": (host, int(port))})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.address = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        proxy.release()
        server.shutdown()
        server.server_close()
