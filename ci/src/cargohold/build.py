"""Building the images of services: the stages of each kind, finished and published.

One path for both modes: the CLI hands in host folders, ``dagger call`` hands
in the module's source directory; from here on everything is the same.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final

import anyio
import dagger
from dagger import Doc

from cargohold.config import Config, ServiceConfig, ServiceKind
from cargohold.image_facts import ImageFacts, read_image_facts
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.stages_node import NodeStages
from cargohold.stages_python import PythonStages

log = logging.getLogger(__name__)

OCI: Final = "org.opencontainers.image"


@dataclass(frozen=True)
class ServiceInputs:
    """What one service's build reads: its context, and the wheelhouse of its variant."""

    source: dagger.Directory
    wheelhouse: dagger.Directory | None = None


@dataclass(frozen=True)
class Provenance:
    """Where an image comes from, for its OCI labels."""

    revision: str = ""
    source_url: str = ""


@dataclass(frozen=True)
class BuildTarget:
    """One image to build: a service in one variant."""

    service: str
    variant: str

    @property
    def label(self) -> str:
        """``backend:cpu`` — how reports name it."""
        return f"{self.service}:{self.variant}"


@dagger.object_type
class BuiltImage:
    """An image that was built and pushed to the registry."""

    service: Annotated[str, Doc("the service")] = dagger.field()
    variant: Annotated[str, Doc("the variant")] = dagger.field()
    reference: Annotated[str, Doc("where it was pushed, by digest")] = dagger.field()


def targets(config: Config, service: str | None, variant: str | None) -> list[BuildTarget]:
    """The images a build makes: one service or all, one variant or each service's default."""
    names = [service] if service else list(config.services)
    return [BuildTarget(name, config.service(name).variant(variant)[0]) for name in names]


def image_labels(name: str, svc: ServiceConfig, revision: str, source_url: str) -> dict[str, str]:
    """OCI labels for the runtime image (pure)."""
    labels = {f"{OCI}.title": name, f"{OCI}.description": f"{svc.kind.value} service {name}"}
    if revision:
        labels[f"{OCI}.revision"] = revision
    if source_url:
        labels[f"{OCI}.source"] = source_url
    return labels


def health_command(svc: ServiceConfig) -> list[str]:
    """A health check that needs only the service's own runtime (no curl, no shell)."""
    url = f"http://127.0.0.1:{svc.port}{svc.health}"
    if svc.kind is ServiceKind.PYTHON:
        return ["python", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout=3)"]
    return ["node", "-e", f"fetch({url!r}).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]


def runtime_container(
    config: Config,
    target: BuildTarget,
    inputs: ServiceInputs,
    ca_bundle: dagger.File | None,
    provenance: Provenance = Provenance(),
) -> dagger.Container:
    """The finished runtime image of ``target``: stages, labels, port, entrypoint, health check."""
    svc = config.service(target.service)
    stages = stages_for(config, target, inputs, ca_bundle)
    ctr = stages.runtime()
    for key, value in svc.env.items():
        ctr = ctr.with_env_variable(key, value)
    for key, value in image_labels(target.service, svc, provenance.revision, provenance.source_url).items():
        ctr = ctr.with_label(key, value)
    return (
        ctr.with_exposed_port(svc.port)
        .with_entrypoint(list(svc.command))
        .with_docker_healthcheck(health_command(svc), interval="10s", timeout="3s", start_period="10s", retries=3)
    )


def stages_for(
    config: Config, target: BuildTarget, inputs: ServiceInputs, ca_bundle: dagger.File | None
) -> PythonStages | NodeStages:
    """The stage recipe of the service's kind."""
    svc = config.service(target.service)
    images = config.images
    if svc.kind is ServiceKind.PYTHON:
        _, variant = svc.variant(target.variant)
        return PythonStages(
            inputs.source,
            svc.python_settings,
            variant,
            images.python_build,
            images.python,
            inputs.wheelhouse,
            ca_bundle,
        )
    return NodeStages(inputs.source, svc.node_settings, images.node, images.node_runtime, ca_bundle)


async def build_and_publish(
    config: Config,
    registry: str,
    inputs: Mapping[str, ServiceInputs],
    wanted: list[BuildTarget],
    *,
    ca_bundle: dagger.File | None,
    provenance: Provenance = Provenance(),
) -> list[BuiltImage]:
    """Build every target concurrently and push each to ``registry/<service>:<variant>``."""
    built: dict[BuildTarget, BuiltImage] = {}

    async def one(target: BuildTarget) -> None:
        ctr = runtime_container(config, target, inputs[target.service], ca_bundle, provenance)
        reference = await ctr.publish(f"{registry}/{target.service}:{target.variant}")
        log.info("built %s → %s", target.label, reference)
        built[target] = BuiltImage(service=target.service, variant=target.variant, reference=reference)  # type: ignore[call-arg]

    async with anyio.create_task_group() as tg:
        for target in wanted:
            tg.start_soon(one, target)
    return [built[t] for t in wanted]


async def image_facts(config: Config, image: BuiltImage) -> ImageFacts:
    """The facts report of a pushed runtime image, against its variant's budget (read from the registry)."""
    ref = Reference.parse(image.reference)
    svc = config.service(image.service)
    _, variant = svc.variant(image.variant)
    read = functools.partial(
        read_image_facts,
        Registry(ref.registry),
        ref.repository,
        ref.digest or image.variant,
        budget=svc.budget_for(variant),
        variant=image.variant,
        role="runtime",
    )
    return await anyio.to_thread.run_sync(read)
