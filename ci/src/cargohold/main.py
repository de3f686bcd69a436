"""The Dagger module: what ``dagger call`` sees, and what the CLI calls in client mode.

``@function`` bodies only assemble the graph; the logic they use lives in the
module named for its concern. In client mode (``python pipelines.py …``) the
CLI calls these same methods: the SDK's ``@function`` returns the plain
function, so there is one pipeline, not two.
"""

from __future__ import annotations

from typing import Annotated

import dagger
from dagger import Doc, dag, function, object_type

from cargohold.engine import ENGINE_VERSION
from cargohold.smoke import DEFAULT_PACKAGE, SmokeReport, run_smoke


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
