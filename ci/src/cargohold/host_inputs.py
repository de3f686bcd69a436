"""Client mode's inputs: host folders become Dagger directories, after the context check.

Module mode (``dagger call``) gets the same ``ServiceInputs`` from the
module's source directory instead (see ``main.py``); from there on the build
is one code path.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagger
from dagger import dag

from cargohold.build import BuildTarget, Provenance, ServiceInputs
from cargohold.build_context import ContextReport, engine_filters, scan
from cargohold.config import Config, ServiceConfig
from cargohold.errors import BuildContextError, ConfigError


def check_contexts(config: Config, root: Path, wanted: list[BuildTarget]) -> list[ContextReport]:
    """Check every wanted service's context on the host, before anything reaches the engine."""
    return [check_context(t.service, config.service(t.service), root) for t in wanted]


def service_inputs(config: Config, root: Path, wanted: list[BuildTarget]) -> dict[str, ServiceInputs]:
    """Each wanted service's context directory and its variant's wheelhouse."""
    inputs: dict[str, ServiceInputs] = {}
    for target in wanted:
        svc = config.service(target.service)
        _, variant = svc.variant(target.variant)
        wheelhouse = _wheelhouse(root, variant.find_links)
        inputs[target.service] = ServiceInputs(context_directory(svc, root), wheelhouse)
    return inputs


def check_context(name: str, svc: ServiceConfig, root: Path) -> ContextReport:
    """Scan the service's context on the host; BuildContextError naming every offending path."""
    report = scan(root / svc.path, svc.context)
    if not report.ok:
        summary = f"the build context of {name} ({svc.path}) holds what must not be built from"
        raise BuildContextError(summary, report.lines()[1:])
    return report


def context_directory(svc: ServiceConfig, root: Path) -> dagger.Directory:
    """The service folder as the engine sees it: only what the context rules let through."""
    include, exclude = engine_filters(svc.context)
    return dag.host().directory(str(root / svc.path), exclude=exclude, include=include)


def provenance(config: Config, root: Path) -> Provenance:
    """The commit being built (empty outside a git checkout) and the configured source URL."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return Provenance("", config.project.source)
    return Provenance(done.stdout.strip() if done.returncode == 0 else "", config.project.source)


def _wheelhouse(root: Path, find_links: str | None) -> dagger.Directory | None:
    if find_links is None or "://" in find_links:
        return None  # none, or a URL that pip reads itself
    folder = root / find_links
    if not folder.is_dir():
        raise ConfigError([f"find-links {find_links!r}: no folder {folder}; fix the path or remove it"])
    return dag.host().directory(str(folder))
