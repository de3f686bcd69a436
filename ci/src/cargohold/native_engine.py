"""A native Dagger engine, started by cargohold as a background service.

For Docker-less Linux hosts (bare-metal or VM CI runners, and our own
machines). The engine binary must already be on the machine; cargohold never
builds or downloads it. It runs:

- as root, in its own mount namespace: it bind-mounts its resolver over
  ``/etc/resolv.conf`` and always listens on ``/run/dagger/engine.sock`` and
  ``/run/buildkit/buildkitd.sock``; private tmpfs mounts over ``/run/dagger``
  and ``/run/buildkit`` keep all of that out of the host, and let a second
  engine run beside it;
- with its state, socket, log and pid file under ``<cache>/engine/<version>/``;
- with its runtime dependencies (runc, dnsmasq, CNI plugins, iptables)
  installed from Debian when missing.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cargohold.daemon import Daemon, wait_until
from cargohold.engine import Engine, EngineKind
from cargohold.errors import CargoholdError, EngineError
from cargohold.hostdeps import ensure_link, ensure_packages
from cargohold.paths import state_path

log = logging.getLogger(__name__)

START_TIMEOUT: Final = 60.0
# "name:cidr" for the engine's container network; a second engine on one host needs its own.
NETWORK_VAR: Final = "CARGOHOLD_ENGINE_NETWORK"

# Proof file → Debian package, for what the engine executes at run time.
RUNTIME_PACKAGES: Final = {
    "/usr/sbin/runc": "runc",
    "dnsmasq": "dnsmasq-base",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/sbin/xtables-nft-multi": "iptables",
    "unshare": "util-linux",
}

# Where the engine looks for them (upstream's image layout), and where Debian puts them.
RUNTIME_LINKS: Final = {
    Path("/usr/local/bin/runc"): Path("/usr/sbin/runc"),
    Path("/usr/bin/xtables-legacy-multi"): Path("/usr/sbin/xtables-legacy-multi"),
    Path("/usr/bin/xtables-nft-multi"): Path("/usr/sbin/xtables-nft-multi"),
}
CNI_SOURCE: Final = Path("/usr/lib/cni")
CNI_DIR: Final = Path("/opt/cni/bin")
INIT_PATH: Final = Path("/usr/local/bin/dagger-init")

# The engine finds the host's own CAs here and, when there are any, runs update-ca-certificates in
# an extra container before and after every exec (Dagger's custom-CA installer): two container
# starts per exec, and update-ca-certificates on the host at every engine start. cargohold gives
# the containers that need it the CA bundle itself (trust.with_ca_bundle), so the engine sees this
# folder empty. Its own TLS uses the host's bundle, /etc/ssl/certs, which already has those CAs.
HOST_CA_DIR: Final = "/usr/local/share/ca-certificates"
# Runs inside the new mount namespace: hide the fixed socket folders and the host's CA folder behind
# private tmpfs mounts, then become the engine.
_NAMESPACE_SHIM: Final = (
    "mount -t tmpfs -o mode=0755 tmpfs /run/dagger && mount -t tmpfs -o mode=0755 tmpfs /run/buildkit"
    f" && {{ test ! -d {HOST_CA_DIR} || mount -t tmpfs -o mode=0755 tmpfs {HOST_CA_DIR}; }}"
)
# With CARGOHOLD_ENGINE_CONFIG: the engine reads /etc/dagger/engine.json; it gets this one on a
# private tmpfs, so the host's file (if any) is neither read nor changed.
_CONFIG_SHIM: Final = (
    'mount -t tmpfs -o mode=0755 tmpfs /etc/dagger && cp "$CARGOHOLD_ENGINE_CONFIG" /etc/dagger/engine.json'
)
NETNS_VAR: Final = "CARGOHOLD_ENGINE_NETNS"  # run the engine in this network namespace (ip netns)
CONFIG_VAR: Final = "CARGOHOLD_ENGINE_CONFIG"  # an engine.json of its own (registries, mirrors)
# Also listen here (tcp://address:port), for clients on other machines (_EXPERIMENTAL_DAGGER_RUNNER_HOST).
LISTEN_VAR: Final = "CARGOHOLD_ENGINE_LISTEN"


@dataclass(frozen=True)
class NativeEngine:
    """An engine binary folder and this machine's state for it."""

    bin_dir: Path
    version: str
    home: Path  # <cache>/engine/<version>

    @classmethod
    def at(cls, bin_dir: Path) -> NativeEngine:
        """The engine in ``bin_dir``, which must hold dagger-engine, dagger and dagger-init."""
        missing = [n for n in ("dagger-engine", "dagger", "dagger-init") if not (bin_dir / n).is_file()]
        if missing:
            msg = f"the native engine folder {bin_dir} lacks {', '.join(missing)}"
            raise EngineError(msg, "put dagger-engine, dagger and dagger-init side by side")
        version = _binary_version(bin_dir / "dagger")
        return cls(bin_dir, version, state_path("engine", version, "x").parent)

    @property
    def socket(self) -> Path:
        """The socket cargohold adds (the fixed ones stay inside the namespace)."""
        return self.home / "engine.sock"

    @property
    def daemon(self) -> Daemon:
        """The engine process, tracked by its pid file."""
        return Daemon("dagger engine", self.home / "engine.pid", self.home / "engine.log", "dagger-engine")

    def describe(self, *, reused: bool = True, seconds: float = 0.0) -> Engine:
        """The client's view of this engine."""
        return Engine(
            EngineKind.NATIVE,
            f"native engine {self.version} ({self.bin_dir}, socket {self.socket})",
            version=self.version,
            runner_host=f"unix://{self.socket}",
            cli_bin=str(self.bin_dir / "dagger"),
            reused=reused,
            start_seconds=seconds,
        )

    def is_up(self) -> bool:
        """Running and accepting connections on its socket."""
        return self.daemon.pid() is not None and _accepts(self.socket)

    def ensure_running(self) -> Engine:
        """Reuse the running engine, or start one and wait for its socket."""
        if self.is_up():
            log.info("engine: reusing the running native engine %s (pid %s)", self.version, self.daemon.pid())
            return self.describe()
        self.stop()
        self._prepare_host()
        started = time.monotonic()
        self.daemon.start(self._argv())
        try:
            wait_until(lambda: _accepts(self.socket), START_TIMEOUT, self.daemon)
        except CargoholdError as e:
            raise EngineError(str(e), e.hint) from e
        seconds = time.monotonic() - started
        log.info("engine: started the native engine %s in %.1f s (log %s)", self.version, seconds, self.daemon.log_file)
        return self.describe(reused=False, seconds=seconds)

    def stop(self) -> bool:
        """Stop the engine if it runs; True when it did."""
        stopped = self.daemon.stop(timeout=20.0)
        self.socket.unlink(missing_ok=True)
        return stopped

    def _argv(self) -> list[str]:
        # nsenter, not "ip netns exec": that one remounts /sys and hides the cgroups runc needs.
        netns = ["nsenter", f"--net=/run/netns/{ns}", "--"] if (ns := os.environ.get(NETNS_VAR)) else []
        steps = [_NAMESPACE_SHIM, *([_CONFIG_SHIM] if os.environ.get(CONFIG_VAR) else []), 'exec "$@"']
        return [
            *netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            " && ".join(steps),
            "cargohold-engine",
            str(self.bin_dir / "dagger-engine"),
            "--root",
            str(self.home / "state"),
            "--addr",
            f"unix://{self.socket}",
            *(["--addr", listen] if (listen := os.environ.get(LISTEN_VAR)) else []),
            *_network_flags(),
        ]

    def _prepare_host(self) -> None:
        if os.geteuid() != 0:
            msg = "the native engine runs as root, and this is not root"
            raise EngineError(msg, "run as root, or use a remote engine (_EXPERIMENTAL_DAGGER_RUNNER_HOST)")
        ensure_packages(RUNTIME_PACKAGES, "the native Dagger engine")
        for link, target in RUNTIME_LINKS.items():
            ensure_link(target, link)
        for plugin in sorted(CNI_SOURCE.iterdir()):
            ensure_link(plugin, CNI_DIR / plugin.name)
        ensure_link(self.bin_dir / "dnsname", CNI_DIR / "dnsname")
        _install_init(self.bin_dir / "dagger-init")
        mount_points = [Path("/run/dagger"), Path("/run/buildkit")] + (
            [Path("/etc/dagger")] if os.environ.get(CONFIG_VAR) else []
        )
        for folder in mount_points:
            folder.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)


def _network_flags() -> list[str]:
    """The engine's container network from ``$CARGOHOLD_ENGINE_NETWORK`` (the engine's defaults otherwise).

    ``name:cidr`` gives it a bridge of its own; ``host`` runs containers in the host's network
    namespace: no bridge, no dnsmasq, so a second engine can run beside the first one for
    builds (Dagger services, which need the container network, then do not work on it).
    """
    value = os.environ.get(NETWORK_VAR, "")
    if not value:
        return []
    if value == "host":
        return ["--oci-worker-net", "host"]
    name, sep, cidr = value.partition(":")
    if not sep or not name or "/" not in cidr:
        msg = f"{NETWORK_VAR}={value} is neither name:cidr nor host"
        raise EngineError(msg, f"set it like {NETWORK_VAR}=cargohold1:10.89.0.0/16, or {NETWORK_VAR}=host")
    return ["--network-name", name, "--network-cidr", cidr]


def _install_init(source: Path) -> None:
    """dagger-init is mounted into every container from this fixed path; keep it current."""
    if INIT_PATH.is_symlink() and INIT_PATH.resolve() == source.resolve():
        return
    INIT_PATH.unlink(missing_ok=True)
    INIT_PATH.symlink_to(source)


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _binary_version(cli: Path) -> str:
    """The version the CLI was built as (``dagger version`` prints ``dagger vX.Y.Z (…)``)."""
    try:
        out = subprocess.run(
            [str(cli), "version"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as e:
        msg = f"{cli} does not run: {e}"
        raise EngineError(msg, "check the native engine binaries") from e
    return next((w for w in out if w.startswith("v") and w[1:2].isdigit()), "unknown")
