"""Extra CA certificates for build steps (corporate or intercepting TLS proxies).

Behind an intercepting proxy, pip and npm inside a container fail TLS unless
they trust the proxy's CA. cargohold hands build steps one PEM bundle:
mounted, never copied, so it is in no layer, and the variables that point
tools at it are removed again before an image leaves the builder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import dagger
from dagger import dag

from cargohold.errors import ConfigError

BUNDLE_PATH: Final = "/run/cargohold/ca-bundle.pem"
# Each replaces its tool's trust store except NODE_EXTRA_CA_CERTS, which adds to it;
# so the bundle must be complete (the host's full bundle, as on Debian).
TRUST_VARIABLES: Final = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def read_bundle(paths: Sequence[Path]) -> str | None:
    """The PEM text of ``paths`` joined, or None when there are none."""
    texts = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as e:
            problem = f"build.ca-certificates: cannot read {path} ({e.strerror}); fix the path or remove it"
            raise ConfigError([problem]) from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ConfigError([f"build.ca-certificates: {path} holds no PEM certificate"])
        texts.append(text.strip())
    return "\n".join(texts) + "\n" if texts else None


def bundle_file(pem: str | None) -> dagger.File | None:
    """The bundle as a Dagger file (works the same in module and client mode)."""
    if pem is None:
        return None
    return dag.directory().with_new_file("ca-bundle.pem", pem).file("ca-bundle.pem")


def with_ca_bundle(bundle: dagger.File | None) -> Callable[[dagger.Container], dagger.Container]:
    """Let the container's network tools trust ``bundle`` (no-op for None)."""

    def apply(ctr: dagger.Container) -> dagger.Container:
        if bundle is None:
            return ctr
        ctr = ctr.with_mounted_file(BUNDLE_PATH, bundle)
        for name in TRUST_VARIABLES:
            ctr = ctr.with_env_variable(name, BUNDLE_PATH)
        return ctr

    return apply


def without_ca_bundle(bundle: dagger.File | None) -> Callable[[dagger.Container], dagger.Container]:
    """Undo ``with_ca_bundle(bundle)``: no mount, no variables pointing at it."""

    def apply(ctr: dagger.Container) -> dagger.Container:
        if bundle is None:
            return ctr
        for name in TRUST_VARIABLES:
            ctr = ctr.without_env_variable(name)
        return ctr.without_mount(BUNDLE_PATH)

    return apply
