"""The runtime image, assembled from the stage cache's own layers: a manifest, not a rebuild.

Every stage's cache entry is a one-layer image holding the stage's folder at
the very path the runtime keeps it (``/opt/heavy``, ``/opt/venv``, ``/app`` …),
and the ``runtime-base`` entry is the whole base (the slim image plus its
non-root user). The runtime image is then those layers, stacked:

    runtime-base layers + heavy + dependencies + app + bake   (Python)
    runtime-base layers + build + app                          (Node)

with a config written here (env, user, entrypoint, health check, labels). So
the runtime is *assembled in the registry*: its blobs are mounted from the
cache repositories (no bytes move when both are on one registry; streamed
once otherwise), only a config blob and a manifest are new. The same torch
layer, byte for byte, serves every build of every change: a code change
pushes kilobytes, and a fresh runner pulls nothing it does not build on.

When an entry is missing (a failed export is only a warning) or the registry
refuses, the same ``RuntimeSpec`` is rendered by the engine instead
(``in_engine``): slower, never wrong.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cargohold.errors import RegistryError
from cargohold.keys import RUNTIME_BASE as BASE_STAGE
from cargohold.reference import Reference
from cargohold.registry import OCI_CONFIG, OCI_MANIFEST, Registry, sha256_digest
from cargohold.stage_cache import created_now

if TYPE_CHECKING:
    import dagger

    from cargohold.stage_cache import Hit

log = logging.getLogger(__name__)

SECOND_NS: Final = 1_000_000_000
HEALTH_TIMING: Final = {"interval": 10, "timeout": 3, "start_period": 10, "retries": 3}


@dataclass(frozen=True)
class RuntimeSpec:
    """Everything a runtime image is, as data: its layers (stage folders, in order) and its config."""

    layers: tuple[tuple[str, str], ...]  # (stage, path in the image), stacked on the base in this order
    env: tuple[tuple[str, str], ...]
    workdir: str
    user: str
    labels: Mapping[str, str]
    port: int
    entrypoint: tuple[str, ...]
    healthcheck: tuple[str, ...]  # a command run without a shell

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage whose entry the runtime is made of."""
        return (BASE_STAGE, *(stage for stage, _ in self.layers))


def image_config(
    base: Mapping[str, Any],
    spec: RuntimeSpec,
    diff_ids: Sequence[str],
    created: str,
    notes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The runtime's image config: the base's, with the spec's settings over it and the new layers (pure).

    ``notes`` says what each layer above the base is, for its history (default: one layer per stage).
    """
    settings = dict(base.get("config") or {})
    env = dict(item.split("=", 1) for item in settings.get("Env") or [] if "=" in item)
    env.update(dict(spec.env))  # a key the base has keeps its place, as `docker build` and the engine do
    settings |= {
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": spec.workdir,
        "User": spec.user,
        "Labels": {**(settings.get("Labels") or {}), **spec.labels},
        "ExposedPorts": {**(settings.get("ExposedPorts") or {}), f"{spec.port}/tcp": {}},
        "Entrypoint": list(spec.entrypoint),
        "Healthcheck": {
            "Test": ["CMD", *spec.healthcheck],
            "Interval": HEALTH_TIMING["interval"] * SECOND_NS,
            "Timeout": HEALTH_TIMING["timeout"] * SECOND_NS,
            "StartPeriod": HEALTH_TIMING["start_period"] * SECOND_NS,
            "Retries": HEALTH_TIMING["retries"],
        },
    }
    settings.pop("Cmd", None)  # a new entrypoint drops the base's default arguments
    config: dict[str, Any] = {
        "architecture": base.get("architecture", "amd64"),
        "os": base.get("os", "linux"),
        "created": created,
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    notes = [f"cargohold: {stage} at {path}" for stage, path in spec.layers] if notes is None else notes
    history = _history(base, notes, created)
    if history is not None:
        config["history"] = history
    return config


def _history(base: Mapping[str, Any], notes: Sequence[str], created: str) -> list[dict[str, Any]] | None:
    """The base's history and one entry per layer above it; None when the base's own does not match its layers."""
    entries = list(base.get("history") or [])
    if not _lines_up(base):
        return None  # a history that does not line up with the layers confuses tools; leave it out
    return [*entries, *({"created": created, "created_by": note} for note in notes)]


def _lines_up(config: Mapping[str, Any]) -> bool:
    """True when an image config's history has one non-empty entry per layer."""
    layered = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    return len(layered) == len((config.get("rootfs") or {}).get("diff_ids") or [])


def layer_notes(hit: Hit, stage: str, path: str) -> list[str]:
    """What each layer of a stage's entry is: its own history when it has one per layer (a stacked entry)."""
    own = [h.get("created_by", "") for h in hit.config.get("history") or [] if not h.get("empty_layer")]
    if len(hit.layers) > 1 and _lines_up(hit.config) and all(note.startswith("cargohold: ") for note in own):
        return own  # written by stack_in_registry; the engine's own notes ("Directory.withDirectory") say nothing
    return [f"cargohold: {stage} at {path}"] * len(hit.layers)


def manifest(config_blob: bytes, layers: Sequence[Mapping[str, Any]]) -> bytes:
    """An OCI image manifest for the config and the layer descriptors (pure)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config_blob), "size": len(config_blob)},
        "layers": [{k: v for k, v in layer.items() if k in {"mediaType", "digest", "size"}} for layer in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def in_registry(spec: RuntimeSpec, entries: Mapping[str, Hit], target: str) -> str:
    """Assemble the runtime from the entries' layers and push it under ``target`` (a tag); by digest.

    Blocking (registry calls): run it in a thread. Raises CargoholdError when the registry refuses.
    """
    base = entries[BASE_STAGE]
    sources: list[tuple[Hit, Mapping[str, Any], str]] = [
        (base, layer, diff) for layer, diff in zip(base.layers, _diff_ids(base), strict=True)
    ]
    notes: list[str] = []
    for stage, path in spec.layers:
        hit = entries[stage]
        sources += [(hit, layer, diff) for layer, diff in zip(hit.layers, _diff_ids(hit), strict=True)]
        notes += layer_notes(hit, stage, path)
    created = created_now()
    config = image_config(base.config, spec, [d for *_, d in sources], created, notes)
    return _push(target, sources, config)


def stack_in_registry(parts: Sequence[tuple[str, Hit]], target: str, labels: Mapping[str, str]) -> str:
    """One entry made of other entries' layers, in order (each part's layers noted as its name); by digest.

    The layered dependency stage is stacked so from its packages' entries (see ``packages``). Blocking.
    """
    layers = [
        (hit, layer, diff, note) for note, hit in parts for layer, diff in zip(hit.layers, _diff_ids(hit), strict=True)
    ]
    return entry_in_registry(target, layers, labels)


def layer_entries(hit: Hit) -> list[tuple[Hit, Mapping[str, Any], str]]:
    """Each layer of an entry with its diff_id, to make entries of single layers from (``entry_in_registry``)."""
    return [(hit, layer, diff) for layer, diff in zip(hit.layers, _diff_ids(hit), strict=True)]


def entry_in_registry(
    target: str, layers: Sequence[tuple[Hit, Mapping[str, Any], str, str]], labels: Mapping[str, str]
) -> str:
    """An entry image of existing blobs, pushed under ``target``: (its entry, descriptor, diff_id, note) per layer.

    Only a config and a manifest are new; the blobs are mounted. By digest. Blocking.
    """
    created = created_now()
    first = layers[0][0].config
    config = {
        "architecture": first.get("architecture", "amd64"),
        "os": first.get("os", "linux"),
        "created": created,
        "config": {"Labels": dict(labels)},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, _, diff, _ in layers]},
        "history": [{"created": created, "created_by": note} for *_, note in layers],
    }
    return _push(target, [(hit, layer, diff) for hit, layer, diff, _ in layers], config)


def _push(target: str, sources: Sequence[tuple[Hit, Mapping[str, Any], str]], config: Mapping[str, Any]) -> str:
    """The sources' blobs placed in the target repository, then a config and a manifest pushed; by digest."""
    ref = Reference.parse(target)
    registry = Registry(ref.registry, timeout=300.0)
    for hit, layer, _ in sources:
        _place_blob(registry, ref.repository, hit, str(layer["digest"]))
    blob = json.dumps(config, sort_keys=True).encode()
    registry.push_blob(ref.repository, sha256_digest(blob), blob)
    doc = manifest(blob, [layer for _, layer, _ in sources])
    digest = registry.put_manifest(ref.repository, str(ref.tag), doc, OCI_MANIFEST)
    return str(ref.with_digest(digest))


def _diff_ids(hit: Hit) -> list[str]:
    diff_ids = list((hit.config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(hit.layers):
        msg = f"the cache entry {hit.reference} lists {len(diff_ids)} diff_ids for {len(hit.layers)} layers"
        raise RegistryError(msg, "delete the entry (prune-cache) and build again")
    return diff_ids


def _place_blob(registry: Registry, repository: str, hit: Hit, digest: str) -> None:
    """The blob in the target repository: mounted on the same registry, copied from another."""
    source = Reference.parse(hit.reference)
    if source.registry == registry.host and registry.mount_blob(repository, digest, source.repository):
        return
    registry.copy_blob(Registry(source.registry, timeout=300.0), source.repository, repository, digest)


def in_engine(spec: RuntimeSpec, base: dagger.Container, folders: Mapping[str, dagger.Directory]) -> dagger.Container:
    """The same runtime, rendered by the engine (when an entry is missing or the registry refused)."""
    ctr = base
    for stage, path in spec.layers:
        ctr = ctr.with_directory(path, folders[stage])
    for key, value in spec.env:
        ctr = ctr.with_env_variable(key, value)
    for key, value in spec.labels.items():
        ctr = ctr.with_label(key, value)
    return (
        ctr.with_workdir(spec.workdir)
        .with_user(spec.user)
        .with_exposed_port(spec.port)
        .with_entrypoint(list(spec.entrypoint))
        .with_docker_healthcheck(
            list(spec.healthcheck),
            interval=f"{HEALTH_TIMING['interval']}s",
            timeout=f"{HEALTH_TIMING['timeout']}s",
            start_period=f"{HEALTH_TIMING['start_period']}s",
            retries=HEALTH_TIMING["retries"],
        )
    )
