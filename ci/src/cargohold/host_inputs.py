"""Client mode's inputs: host folders, hashed for keys and handed to the engine after the context check.

Everything up to the keys needs no engine (``plan`` runs without one); only
``service_inputs`` turns host folders into Dagger directories. Module mode
(``dagger call``) builds the same ``ServiceInputs`` from its source directory.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cargohold.build_context import ContextReport, engine_filters, scan
from cargohold.config import Config, ServiceConfig
from cargohold.errors import BuildContextError, ConfigError
from cargohold.keys import BuildTarget, SourceTree, StageKeys, base_digests, service_keys
from cargohold.source_tree import host_tree, host_wheelhouse_digest

if TYPE_CHECKING:  # the SDK (and build, which imports it) only for what reaches the engine
    from cargohold.build import Provenance, ServiceInputs


@dataclass(frozen=True)
class HostService:
    """One target's inputs as they are on the host."""

    folder: Path
    tree: SourceTree
    wheel_folder: Path | None
    wheel_digest: str


def check_contexts(config: Config, root: Path, wanted: list[BuildTarget]) -> list[ContextReport]:
    """Check every wanted service's context on the host, before anything reaches the engine."""
    return [check_context(t.service, config.service(t.service), root) for t in wanted]


def check_context(name: str, svc: ServiceConfig, root: Path) -> ContextReport:
    """Scan the service's context on the host; BuildContextError naming every offending path."""
    report = scan(root / svc.path, svc.context)
    if not report.ok:
        summary = f"the build context of {name} ({svc.path}) holds what must not be built from"
        raise BuildContextError(summary, report.lines()[1:])
    return report


def host_services(config: Config, root: Path, wanted: list[BuildTarget]) -> dict[BuildTarget, HostService]:
    """Hash each target's context and wheelhouse on the host."""
    found = {}
    for target in wanted:
        svc = config.service(target.service)
        _, variant = svc.variant(target.variant)
        wheels = _wheel_folder(root, variant.find_links)
        folder = root / svc.path
        found[target] = HostService(folder, host_tree(folder, svc.context), wheels, host_wheelhouse_digest(wheels))
    return found


def keys_for(config: Config, hosts: dict[BuildTarget, HostService]) -> dict[BuildTarget, StageKeys]:
    """The stage and image keys of every target (no engine)."""
    bases = base_digests(config)
    return {
        t: service_keys(config, t.service, t.variant, tree=h.tree, bases=bases, wheelhouse=h.wheel_digest)
        for t, h in hosts.items()
    }


def service_inputs(config: Config, hosts: dict[BuildTarget, HostService]) -> dict[BuildTarget, ServiceInputs]:
    """Each target's context directory and wheelhouse as the engine sees them (needs a session)."""
    from dagger import dag  # noqa: PLC0415 - see the TYPE_CHECKING import

    from cargohold.build import ServiceInputs  # noqa: PLC0415

    inputs = {}
    for target, host in hosts.items():
        include, exclude = engine_filters(config.service(target.service).context)
        source = dag.host().directory(str(host.folder), exclude=exclude, include=include)
        wheels = dag.host().directory(str(host.wheel_folder)) if host.wheel_folder else None
        inputs[target] = ServiceInputs(source, host.tree, wheels, host.wheel_digest)
    return inputs


def provenance(config: Config, root: Path) -> Provenance:
    """The commit being built (empty outside a git checkout) and the configured source URL."""
    from cargohold.build import Provenance  # noqa: PLC0415 - see the TYPE_CHECKING import

    try:
        done = subprocess.run(
            ["git", "-C", str(root), "show", "-s", "--format=%H %ct", "HEAD"],
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return Provenance("", config.project.source)
    if done.returncode != 0 or len(parts := done.stdout.split()) != 2:  # noqa: PLR2004 - sha and time
        return Provenance("", config.project.source)
    committed = dt.datetime.fromtimestamp(int(parts[1]), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Provenance(parts[0], config.project.source, committed)


def _wheel_folder(root: Path, find_links: str | None) -> Path | None:
    if find_links is None or "://" in find_links:
        return None  # none, or a URL that pip reads itself
    folder = root / find_links
    if not folder.is_dir():
        raise ConfigError([f"find-links {find_links!r}: no folder {folder}; fix the path or remove it"])
    return folder
