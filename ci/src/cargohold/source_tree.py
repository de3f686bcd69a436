"""The content of a build context, hashed the same way on the host and in the engine.

Keys must not depend on where they are computed: the CLI hashes the host
folder directly (no engine needed, so a plan costs a second), and module mode
hashes the module's directory inside a container with ``sha256sum``. Both
give ``path → sha256`` over the same files, hence the same keys.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cargohold.build_context import walk
from cargohold.config import ContextConfig
from cargohold.keys import SourceTree

if TYPE_CHECKING:  # the SDK is imported by module mode's functions alone: the host's side needs none
    import dagger

_CHUNK: Final = 1024 * 1024
_LIST_SCRIPT: Final = "find . -type f -print0 | sort -z | xargs -0 -r sha256sum"
_WHEELHOUSE_SCRIPT: Final = "find . -type f -printf '%P %s\\n' | sort"


def host_tree(folder: Path, rules: ContextConfig) -> SourceTree:
    """Hash every file of the context on the host."""
    return SourceTree({f.path: _sha256(folder / f.path) for f in walk(folder, rules)})


def host_wheelhouse_digest(folder: Path | None) -> str:
    """A digest of a wheel folder's file names and sizes (wheel names carry their versions)."""
    if folder is None:
        return ""
    lines = sorted(f"{p.relative_to(folder).as_posix()} {p.stat().st_size}" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest() if lines else ""


async def engine_tree(directory: dagger.Directory, image: str) -> SourceTree:
    """Hash every file of a Dagger directory inside a container (module mode)."""
    out = await _run(directory, image, _LIST_SCRIPT)
    files = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        files[path.removeprefix("./")] = digest
    return SourceTree(files)


async def engine_wheelhouse_digest(directory: dagger.Directory | None, image: str) -> str:
    """The module-mode twin of ``host_wheelhouse_digest``."""
    if directory is None:
        return ""
    lines = (await _run(directory, image, _WHEELHOUSE_SCRIPT)).strip()
    return hashlib.sha256(lines.encode()).hexdigest() if lines else ""


async def _run(directory: dagger.Directory, image: str, script: str) -> str:
    from dagger import dag  # noqa: PLC0415 - see the TYPE_CHECKING import

    ctr = dag.container().from_(image).with_mounted_directory("/ctx", directory).with_workdir("/ctx")
    return await ctr.with_exec(["sh", "-c", script]).stdout()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
