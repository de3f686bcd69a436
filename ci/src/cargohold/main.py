"""The Dagger module: what ``dagger call`` sees, and what the CLI calls in client mode.

``@function`` bodies only assemble the graph; the logic they use lives in the
module named for its concern. In client mode (``python pipelines.py …``) the
CLI calls these same methods: the SDK's ``@function`` returns the plain
function, so there is one pipeline, not two.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from dataclasses import replace
from typing import Annotated

import anyio
import dagger
from dagger import DefaultPath, Doc, Ignore, dag, function, object_type

from cargohold.build import Provenance, ServiceInputs, build_all, jobs_for
from cargohold.build_context import engine_filters
from cargohold.ci_run import CiOptions
from cargohold.config import CONFIG_FILE, OVERRIDES_VAR, Config, ServiceKind, apply_overrides, parse_config
from cargohold.engine import ENGINE_VERSION
from cargohold.errors import CargoholdError
from cargohold.keys import BuildTarget, StageKeys, base_digests, service_keys
from cargohold.pipeline import IntegrationInputs, run_ci
from cargohold.plan import decide, lookup_all, references_for
from cargohold.publish import ReleaseImage, release_images
from cargohold.publish import publish as publish_images
from cargohold.reference import Reference
from cargohold.registry import Credentials, Registry
from cargohold.results import failed, parse_only, summary_lines
from cargohold.sbom import release_sbom
from cargohold.smoke import DEFAULT_PACKAGE, SmokeReport, run_smoke
from cargohold.source_tree import engine_tree, engine_wheelhouse_digest
from cargohold.targets import targets

# The module reads the repository through an allowlist: configuration and service folders only.
SOURCE_IGNORE = [
    "*", "!cargohold.toml", "!services/**", "!integration/**",
    "**/node_modules", "**/.venv", "**/__pycache__", "**/dist",
]  # fmt: skip
Source = Annotated[
    dagger.Directory,
    Doc("the repository (cargohold.toml and the service folders)"),
    DefaultPath("/"),
    Ignore(SOURCE_IGNORE),
]


@object_type
class BuiltImage:
    """An image that was built (or reused for identical inputs) and is in the registry."""

    service: Annotated[str, Doc("the service")] = dagger.field()
    variant: Annotated[str, Doc("the variant")] = dagger.field()
    reference: Annotated[str, Doc("where it is, by digest")] = dagger.field()
    outcome: Annotated[str, Doc("built, or reused (identical inputs were already in the registry)")] = dagger.field()
    key: Annotated[str, Doc("the content key of the image's inputs")] = dagger.field()


@object_type
class Cargohold:
    """Build, cache, test and publish the container images of a monorepo."""

    @function
    async def engine_version(self) -> str:
        """The version of the engine running this call (cargohold pins v0.21.8)."""
        return await dag.version()

    @function
    def pinned_engine_version(self) -> str:
        """The engine version this cargohold release is pinned to."""
        return ENGINE_VERSION

    @function
    async def build(
        self,
        source: Source,
        registry: Annotated[str, Doc("registry and namespace to push to, e.g. ghcr.io/acme")],
        service: Annotated[str | None, Doc("build only this service (default: all)")] = None,
        variant: Annotated[str | None, Doc("build this variant (default: each service's default)")] = None,
        overrides: Annotated[str, Doc("a TOML fragment merged over cargohold.toml")] = "",
        wheelhouse: Annotated[dagger.Directory | None, Doc("wheels for the variant's heavy requirements")] = None,
        ca_bundle: Annotated[dagger.File | None, Doc("PEM bundle that build steps trust for HTTPS")] = None,
    ) -> list[BuiltImage]:
        """Build the services' runtime images and push them; the same code as `pipelines.py build`."""
        config = await _module_config(source, overrides)
        wanted = targets(config, service, variant)
        inputs, keys = await _module_keys(config, source, wanted, wheelhouse)
        run = await build_all(jobs_for(config, wanted, inputs, keys, registry=registry, ca_bundle=ca_bundle))
        return [BuiltImage(**dataclasses.asdict(image)) for image in run.images]

    @function
    async def check(
        self,
        source: Source,
        registry: Annotated[str, Doc("registry and namespace the images go to, e.g. ghcr.io/acme")],
        service: Annotated[list[str] | None, Doc("only these services (default: all)")] = None,
        only: Annotated[list[str] | None, Doc("only these tasks: lint, test, build, integration")] = None,
        fail_fast: Annotated[bool, Doc("stop at the first failure")] = False,  # noqa: FBT002 - a Dagger flag
        overrides: Annotated[str, Doc("a TOML fragment merged over cargohold.toml")] = "",
        wheelhouse: Annotated[dagger.Directory | None, Doc("wheels for the variant's heavy requirements")] = None,
        ca_bundle: Annotated[dagger.File | None, Doc("PEM bundle that build steps trust for HTTPS")] = None,
    ) -> str:
        """Lint, unit tests and builds of every service side by side, then integration; the same as `ci`."""
        config = await _module_config(source, overrides)
        wanted = [t for name in (service or list(config.services)) for t in targets(config, name, None)]
        inputs, keys = await _module_keys(config, source, wanted, wheelhouse)
        jobs = jobs_for(config, wanted, inputs, keys, registry=registry, ca_bundle=ca_bundle,
                        cache_registry=config.project.cache)  # fmt: skip
        suite = None
        if config.integration is not None:
            folder = source.directory(config.integration.path)
            suite = IntegrationInputs(folder, await engine_tree(folder, config.images.python))
        run = await run_ci(config, jobs, CiOptions(parse_only(only), fail_fast=fail_fast), suite, ca_bundle)
        text = "\n".join(summary_lines(run.results))
        if failed(run.results):
            raise CargoholdError(text, "see each failed task's output above")
        return text

    @function
    async def publish(
        self,
        source: Source,
        registry: Annotated[str, Doc("the registry and namespace ci built into (where the images are)")],
        to: Annotated[str, Doc("the release registry and namespace, e.g. ghcr.io/acme")],
        revision: Annotated[str, Doc("the commit being released (git sha)")],
        committed: Annotated[str, Doc("the commit's time, RFC 3339 UTC (the images' created label)")],
        version: Annotated[str | None, Doc("the release version (semver); omit for a branch build")] = None,
        branch: Annotated[str | None, Doc("the branch, for a build that is not a release")] = None,
        username: Annotated[str, Doc("the release registry user")] = "",
        token: Annotated[dagger.Secret | None, Doc("the release registry token (never a plain string)")] = None,
        licenses: Annotated[str, Doc("the SPDX licence expression for the image labels")] = "",
        dry_run: Annotated[bool, Doc("print every reference and digest, write nothing")] = False,  # noqa: FBT002
        overrides: Annotated[str, Doc("a TOML fragment merged over cargohold.toml")] = "",
    ) -> str:
        """Publish what ci built and checked: every image by digest first, then the tags; the same as `publish`."""
        config = await _module_config(source, overrides)
        wanted = [t for name in config.services for t in targets(config, name, None)]
        _, keys = await _module_keys(config, source, wanted, None)
        existing = await anyio.to_thread.run_sync(lookup_all, references_for(keys, registry, config.project.cache))
        planned = decide(keys, existing, registry, None, config.project.cache)
        provenance = Provenance(revision, config.project.source, committed)
        credentials = Credentials(username, (await token.plaintext()).strip()) if token is not None else None
        images = await anyio.to_thread.run_sync(
            functools.partial(release_images, config, planned, to=to, version=version, branch=branch,
                              provenance=provenance, licenses=licenses, credentials=credentials)
        )  # fmt: skip
        images = [replace(i, sbom=await image_sbom(config, i, source.directory(config.service(i.service).path),
                                              version or branch or "", committed)) for i in images]  # fmt: skip
        lines = [line for image in images for line in image.lines()]
        if dry_run:
            return "\n".join([*lines, f"dry run: {len(images)} images; nothing written"])
        host = Reference.parse(f"{to}/x").registry
        source_registry = Registry(Reference.parse(f"{registry}/x").registry)
        target = Registry(host, timeout=120.0, credentials=credentials)
        await anyio.to_thread.run_sync(publish_images, source_registry, target, images)
        return "\n".join([*lines, f"published {len(images)} images to {to}"])

    @function
    async def plan(
        self,
        source: Source,
        registry: Annotated[str, Doc("registry and namespace the images go to, e.g. ghcr.io/acme")],
        service: Annotated[str | None, Doc("plan only this service (default: all)")] = None,
        variant: Annotated[str | None, Doc("this variant (default: each service's default)")] = None,
        overrides: Annotated[str, Doc("a TOML fragment merged over cargohold.toml")] = "",
        wheelhouse: Annotated[dagger.Directory | None, Doc("wheels for the variant's heavy requirements")] = None,
    ) -> str:
        """What a build would build or reuse, and why: JSON with a CI matrix, as `pipelines.py plan --json`."""
        config = await _module_config(source, overrides)
        wanted = targets(config, service, variant)
        _, keys = await _module_keys(config, source, wanted, wheelhouse)
        cache = config.project.cache
        existing = await anyio.to_thread.run_sync(lookup_all, references_for(keys, registry, cache))
        return json.dumps(decide(keys, existing, registry, None, cache).as_json(), indent=2)

    @function
    async def smoke(
        self,
        python_image: Annotated[str, Doc("Python base image to build FROM (pinned by digest for real use)")],
        registry: Annotated[str, Doc("registry and namespace to publish the smoke image to, e.g. 127.0.0.1:5000/acme")],
        ca_bundle: Annotated[
            dagger.File | None, Doc("PEM bundle that pip trusts for HTTPS (behind a TLS proxy)")
        ] = None,
        package: Annotated[str, Doc("a small PyPI requirement to install and import")] = DEFAULT_PACKAGE,
    ) -> SmokeReport:
        """Build from the Python image, pip-install from PyPI, publish, pull back by digest, check."""
        return await run_smoke(python_image, registry, ca_bundle, package)


async def _module_config(source: dagger.Directory, overrides: str) -> Config:
    raw = tomllib.loads(await source.file(CONFIG_FILE).contents())
    return parse_config(apply_overrides(raw, {OVERRIDES_VAR: overrides} if overrides else {}))


async def _module_keys(
    config: Config, source: dagger.Directory, wanted: list[BuildTarget], wheelhouse: dagger.Directory | None
) -> tuple[dict[BuildTarget, ServiceInputs], dict[BuildTarget, StageKeys]]:
    """Each target's inputs and keys, hashed inside the engine (the CLI hashes host files instead)."""
    inputs = {t: await _module_inputs(config, source, t.service, wheelhouse) for t in wanted}
    bases = base_digests(config)
    keys = {
        t: service_keys(config, t.service, t.variant, tree=i.tree, bases=bases, wheelhouse=i.wheelhouse_digest)
        for t, i in inputs.items()
    }
    return inputs, keys


async def _module_inputs(
    config: Config, source: dagger.Directory, name: str, wheelhouse: dagger.Directory | None
) -> ServiceInputs:
    """The same inputs the CLI makes from host folders, hashed inside the engine instead."""
    svc = config.service(name)
    include, exclude = engine_filters(svc.context)
    context = source.directory(svc.path).filter(include=include, exclude=exclude)
    tree = await engine_tree(context, config.images.python)
    return ServiceInputs(context, tree, wheelhouse, await engine_wheelhouse_digest(wheelhouse, config.images.python))


async def image_sbom(
    config: Config, image: ReleaseImage, folder: dagger.Directory, version: str, committed: str
) -> bytes:
    """One image's SBOM; the CLI calls this too, with the host folder."""
    svc = config.service(image.service)
    return await release_sbom(
        python=svc.kind is ServiceKind.PYTHON, image=str(image.source), node_image=config.images.node,
        lockfiles=folder.filter(include=["package.json", "package-lock.json"]), name=image.target,
        version=version, committed=committed,
    )  # fmt: skip
