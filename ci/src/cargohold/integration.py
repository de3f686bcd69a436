"""Integration tests against the images a run built or reused — never a rebuild.

Each service's image runs as a Dagger service, in dependency order, next to
PostgreSQL whose data directory is a tmpfs mount. A test container with the
suite's own pinned tools reaches every service by name (``<NAME>_URL``) and
the database through the secret ``DATABASE_URL``; it waits for every
service's health path before the suite starts, and leaves its JUnit XML for
the host.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import dagger
from dagger import dag

from cargohold.cache import pip_cache
from cargohold.config import Config, IntegrationConfig
from cargohold.trust import with_ca_bundle

PGDATA: Final = "/var/lib/postgresql/data"
DB_HOST: Final = "postgres"
DB_USER: Final = "app"
DB_NAME: Final = "app"
SUITE: Final = "/suite"
VENV: Final = "/opt/suite-venv"
JUNIT: Final = "/reports/integration.xml"
WAIT_SCRIPT: Final = """
import os, sys, time, urllib.request
targets = [u for u in sys.argv[1:]]
deadline = time.monotonic() + 180
for url in targets:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    print("healthy:", url, flush=True)
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"not healthy after 180 s: {url}")
        time.sleep(0.5)
"""


@dataclass(frozen=True)
class Database:
    """PostgreSQL for one run: the service, and the URL that reaches it (a secret: it holds the password)."""

    service: dagger.Service
    url: dagger.Secret


def database(image: str) -> Database:
    """PostgreSQL with a random password and its data directory on tmpfs."""
    password = secrets.token_urlsafe(18)
    service = (
        dag.container()
        .from_(image)
        .with_env_variable("POSTGRES_USER", DB_USER)
        .with_env_variable("POSTGRES_DB", DB_NAME)
        .with_secret_variable("POSTGRES_PASSWORD", dag.set_secret("cargohold-postgres-password", password))
        .with_mounted_temp(PGDATA)
        .with_exposed_port(5432)
        .as_service(use_entrypoint=True)
    )
    url = f"postgresql://{DB_USER}:{password}@{DB_HOST}:5432/{DB_NAME}"
    return Database(service, dag.set_secret("cargohold-database-url", url))


def start_order(config: Config) -> list[str]:
    """Services before the services that depend on them (pure)."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name not in config.services:
            return
        for dep in config.service(name).depends_on:
            if dep in path:
                return
            visit(dep, (*path, name))
        order.append(name)

    for name in config.services:
        visit(name, ())
    return order


def app_services(config: Config, images: Mapping[str, str], db: Database) -> dict[str, dagger.Service]:
    """Every service's image as a running service, bound to what it depends on, by name."""
    services: dict[str, dagger.Service] = {}
    for name in start_order(config):
        svc = config.service(name)
        ctr = dag.container().from_(images[name])
        for key, value in svc.integration_env.items():
            ctr = ctr.with_env_variable(key, value)
        for dep in svc.depends_on:
            if dep == "postgres":
                ctr = ctr.with_service_binding(DB_HOST, db.service).with_secret_variable("DATABASE_URL", db.url)
            else:
                ctr = ctr.with_service_binding(dep, services[dep])
        services[name] = ctr.with_exposed_port(svc.port).as_service(use_entrypoint=True)
    return services


def suite_container(
    config: Config,
    settings: IntegrationConfig,
    *,
    suite: dagger.Directory,
    services: Mapping[str, dagger.Service],
    db: Database,
    ca_bundle: dagger.File | None,
) -> dagger.Container:
    """The test container: the suite's pinned tools, every service bound by name, waiting for health."""
    ctr = (
        dag.container()
        .from_(config.images.python)
        .with_(with_ca_bundle(ca_bundle))
        .with_(pip_cache())
        .with_exec(["python3", "-m", "venv", VENV])
        .with_file(f"/tmp/{settings.requirements}", suite.file(settings.requirements))  # noqa: S108 - container path
        .with_exec([f"{VENV}/bin/pip", "install", "--disable-pip-version-check", "-r", f"/tmp/{settings.requirements}"])  # noqa: S108
        .with_directory(SUITE, suite)
        .with_workdir(SUITE)
        .with_env_variable("PATH", f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .with_service_binding(DB_HOST, db.service)
        .with_secret_variable("DATABASE_URL", db.url)
        .with_new_file("/cargohold/wait.py", WAIT_SCRIPT)
        .with_exec(["mkdir", "-p", "/reports"])
    )
    health_urls = []
    for name, service in services.items():
        svc = config.service(name)
        url = f"http://{name}:{svc.port}"
        ctr = ctr.with_service_binding(name, service).with_env_variable(f"{name.upper().replace('-', '_')}_URL", url)
        health_urls.append(url + svc.health)
    return ctr.with_exec(["python3", "/cargohold/wait.py", *health_urls]).with_exec(
        [*settings.command, f"--junitxml={JUNIT}"]
    )
