"""Background processes cargohold starts and keeps: the native engine, the local registry.

One small mechanism for both: a pid file and a log file under the cache
directory, start detached in its own session, reuse while alive, stop with
SIGTERM then SIGKILL. Readiness is the caller's check (a socket, an HTTP ping).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cargohold.errors import CargoholdError


@dataclass(frozen=True)
class Daemon:
    """A named background process tracked by its pid file."""

    name: str
    pid_file: Path
    log_file: Path
    binary: str  # a substring of its command line, so a recycled pid is not taken for it

    def pid(self) -> int | None:
        """The pid of the running process, or None when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if not cmdline:  # just spawned, not yet exec'd: /proc shows no command line for a moment
            return None if _is_zombie(pid) else pid
        return pid if self.binary.encode() in cmdline else None

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Start detached: its own session, stdin from /dev/null, output to the log file.

        ``posix_spawn`` rather than ``Popen``: the process is meant to outlive
        this one, and a ``Popen`` object would warn when collected while it runs.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            pid = os.posix_spawnp(
                argv[0],
                list(argv),
                dict(env) if env is not None else dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
            )
        except OSError as e:
            msg = f"could not start {self.name} ({argv[0]}: {e.strerror})"
            raise CargoholdError(msg, "check that the program is installed") from e
        finally:
            os.close(log_fd)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop it; True when something was running. Waits for the process to go away."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of its log, for an error message."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def wait_until(ready: Callable[[], bool], timeout: float, daemon: Daemon) -> float:
    """Poll ``ready`` until it holds; the seconds it took. Fails early if the process died."""
    start = time.monotonic()
    while not ready():
        if daemon.pid() is None:
            msg = f"{daemon.name} exited during start-up: {daemon.log_tail()}"
            raise CargoholdError(msg, f"see its log at {daemon.log_file}")
        if time.monotonic() - start > timeout:
            msg = f"{daemon.name} was not ready after {timeout:.0f} s"
            raise CargoholdError(msg, f"see its log at {daemon.log_file}")
        time.sleep(0.1)
    return time.monotonic() - start


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Reap it if it is our child (started in this process); harmless otherwise.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
