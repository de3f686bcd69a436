"""What the reliability tests share: the real command line, a checked repository, registry reads.

The checked repository is built by ``ci --only lint,test,build`` into a
namespace that stays (``reliability``), from a commit with fixed dates, so a
second run of the suite on the same machine finds every image checked and
starts no engine for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Final

from cargohold.local_registry import local_registry_address
from cargohold.reference import Reference
from cargohold.registry import Registry
from tests.integration import workspace
from tests.integration.workspace import copy_repo, runner_env

SERVICES: Final = ("backend", "frontend")
_FIXED_DATE: Final = "2026-01-01T00:00:00Z"


def cli(repo: Path, env: dict[str, str], *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """The real command line on ``repo``'s cargohold.toml, run in ``repo``, with ``env``."""
    return workspace.cli(repo / "cargohold.toml", env, *args, timeout=timeout, cwd=repo)


def start(repo: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The real command line, started in the background (for signals), as a terminal would start it.

    A shell's background job inherits SIGINT ignored (``./dev test &``, some CI runners); the
    command under test gets the default disposition back, as a foreground command has.
    """
    argv = workspace.cli_argv(repo / "cargohold.toml", *args)
    # preexec_fn is one syscall and takes no lock: safe in a threaded parent.
    return subprocess.Popen(argv, env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # noqa: PLW1509  # fmt: skip


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def git_repo(dst: Path) -> Path:
    """A repository copy committed with fixed dates (the same commit for the same content)."""
    repo = copy_repo(dst)
    env = os.environ | {"GIT_AUTHOR_DATE": _FIXED_DATE, "GIT_COMMITTER_DATE": _FIXED_DATE}
    git = ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"]):
        subprocess.run([*git, *step], check=True, env=env)
    return repo


def scratch(prefix: str) -> str:
    """A fresh namespace on the local registry."""
    return f"{local_registry_address()}/{prefix}-{uuid.uuid4().hex[:8]}"


def with_cache(namespace: str, cache: str, **extra: str) -> dict[str, str]:
    """A runner building into ``namespace`` with its stage cache at ``cache``."""
    env = runner_env(namespace, **extra)
    env["CARGOHOLD_OVERRIDES"] += f'\nproject.cache = "{cache}"'
    return env


def change_frontend(repo: Path) -> None:
    """A code-only change of the frontend: a new image key, the same dependency stage."""
    main_ts = repo / "services/frontend/src/main.ts"
    main_ts.write_text(main_ts.read_text() + f"\n// change {uuid.uuid4().hex}\n")


def direct(namespace: str) -> tuple[Registry, str]:
    """The local registry and the repository path of ``namespace`` (host/ns → ns)."""
    ref = Reference.parse(f"{namespace}/x:y")
    return Registry(local_registry_address()), ref.repository.rsplit("/", 1)[0]


def tags(namespace: str, service: str) -> list[str]:
    """The tags of ``namespace/service`` on the local registry (whatever address ``namespace`` uses)."""
    registry, path = direct(namespace)
    return registry.tags(f"{path}/{service}")


def release_tags(namespace: str, service: str) -> list[str]:
    """The tags a release moves (every tag but the SBOM's ``sha256-….sbom``)."""
    return [t for t in tags(namespace, service) if not t.endswith(".sbom")]


def planned_digests(stdout: str) -> dict[str, str]:
    """service → digest, from publish's image lines (``…/<service>@sha256:…  (from …)``)."""
    out = {}
    for line in stdout.splitlines():
        if "@sha256:" in line and "(from " in line:
            name, digest = line.split()[0].rsplit("@", 1)
            out[name.rsplit("/", 1)[1]] = digest
    return out


def layers(namespace: str, service: str, tag: str) -> list[str]:
    """The layer digests of ``namespace/service:tag``."""
    registry, path = direct(namespace)
    manifest = json.loads(registry.get_manifest(f"{path}/{service}", tag))
    return [layer["digest"] for layer in manifest["layers"]]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Which of ``pids`` still run (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.add(pid)
    return out


def interrupt(proc: subprocess.Popen[str], signum: signal.Signals, grace: float = 90.0) -> tuple[int, str, set[int]]:
    """Send ``signum``; (exit code, stderr, descendants still alive a moment after it exited).

    ``grace`` bounds the wait only so a hung process fails the test instead of hanging it.
    """
    below = descendants(proc.pid)
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return -9, err, below
    for _ in range(50):  # the session's CLI may take a moment to notice its parent went away
        if not alive(below):
            break
        time.sleep(0.2)
    return proc.returncode, err, alive(below)
