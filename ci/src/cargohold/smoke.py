"""The smoke pipeline: proof that engine, registry, base image and trust store work together.

It builds FROM the configured Python image, installs a small package from
PyPI through the configured CA bundle, runs it, publishes the image to the
registry, and pulls it back by digest to check its content. Each step is
timed, so the numbers land in the report.
"""

from __future__ import annotations

import time
from typing import Annotated, Final

import dagger
from dagger import Doc, dag

from cargohold.cache import pip_cache
from cargohold.trust import with_ca_bundle, without_ca_bundle

DEFAULT_PACKAGE: Final = "six==1.16.0"
VENV: Final = "/opt/venv"
MESSAGE_FILE: Final = "/opt/smoke/message.txt"


@dagger.object_type
class SmokeReport:
    """What the smoke pipeline did, step by step."""

    engine_version: Annotated[str, Doc("version of the engine that ran it")] = dagger.field()
    package: Annotated[str, Doc("the package installed from PyPI")] = dagger.field()
    output: Annotated[str, Doc("what the installed package printed in the built container")] = dagger.field()
    reference: Annotated[str, Doc("the published image, by digest")] = dagger.field()
    pulled_content: Annotated[str, Doc("the marker file read back from the image pulled by digest")] = dagger.field()
    build_seconds: Annotated[float, Doc("FROM, venv, pip install and run")] = dagger.field()
    publish_seconds: Annotated[float, Doc("push to the registry")] = dagger.field()
    pull_seconds: Annotated[float, Doc("pull back by digest and read")] = dagger.field()


def smoke_container(python_image: str, package: str, ca_bundle: dagger.File | None) -> dagger.Container:
    """A venv with ``package`` installed from PyPI, and a marker file naming it."""
    module = package.split("==", maxsplit=1)[0].split("[", maxsplit=1)[0].replace("-", "_")
    return (
        dag.container()
        .from_(python_image)
        .with_(with_ca_bundle(ca_bundle))
        .with_(pip_cache())
        .with_exec(["python3", "-m", "venv", VENV])
        .with_exec([f"{VENV}/bin/pip", "install", "--disable-pip-version-check", package])
        .with_(without_ca_bundle(ca_bundle))
        .with_exec([f"{VENV}/bin/python", "-c", f"import {module}; print({module}.__name__, {module}.__version__)"])
        .with_new_file(MESSAGE_FILE, f"cargohold smoke: {package}\n")
    )


async def run_smoke(
    python_image: str, registry: str, ca_bundle: dagger.File | None, package: str = DEFAULT_PACKAGE
) -> SmokeReport:
    """Build, run, publish, pull back by digest, and check; ``registry`` is ``host[/namespace]``."""
    began = time.monotonic()
    ctr = smoke_container(python_image, package, ca_bundle)
    output = (await ctr.stdout()).strip()
    built = time.monotonic()
    reference = await ctr.publish(f"{registry}/smoke:latest")
    published = time.monotonic()
    pulled = await dag.container().from_(reference).file(MESSAGE_FILE).contents()
    # mypy does not see through the SDK's dataclass_transform on a bound method.
    return SmokeReport(  # type: ignore[call-arg]
        engine_version=await dag.version(),
        package=package,
        output=output,
        reference=reference,
        pulled_content=pulled.strip(),
        build_seconds=round(built - began, 2),
        publish_seconds=round(published - built, 2),
        pull_seconds=round(time.monotonic() - published, 2),
    )
