"""The services built as plain Dagger calls, the way a team writes them by hand: the bench's middle column.

    python bench/raw_dagger.py SERVICE SERVICE_DIR --builder REF --runtime REF [--wheels DIR] [--publish REF]

The same recipe as ``bench/dockerfiles/<service>.Dockerfile``: a builder with
compilers and a venv (torch from a local wheel first, then the lockfile, then
the baked model), pip's and npm's caches on cache volumes, and a runtime stage
with a non-root user that gets the venv (or dist/) copied in. No content keys,
no registry cache: a fresh engine rebuilds everything. ``--publish`` pushes the
image with ``Container.publish`` (otherwise it is only built). The engine is
the one ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` names; the host's CA bundle is
mounted for pip and npm, never copied into a layer. Prints the image reference
(or ``built``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

import anyio
import dagger
from dagger import dag

CA: Final = "/etc/ssl/certs/ca-certificates.crt"
CA_MOUNT: Final = "/run/ca.crt"
TORCH: Final = "requirements/torch.txt"
LISTEN: Final = "0.0.0.0"  # noqa: S104 - a server in a container listens on every interface
PATH: Final = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USERADD: Final = ["useradd", "--system", "--uid", "10001", "--user-group", "--no-create-home",
                  "--home-dir", "/app", "--shell", "/usr/sbin/nologin", "app"]  # fmt: skip


def ca_secret() -> dagger.Secret:
    """The host's CA bundle as a secret: trusted by pip and npm, in no layer and no cache key."""
    return dag.set_secret("ca-bundle", Path(CA).read_text())


def backend(src: dagger.Directory, builder: str, runtime: str, wheels: dagger.Directory) -> dagger.Container:
    """FastAPI + CPU torch: gcc builder with a venv, slim non-root runtime."""
    ca = ca_secret()
    build = (
        dag.container()
        .from_(builder)
        .with_mounted_cache("/root/.cache/pip", dag.cache_volume("pip"))
        .with_env_variable("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .with_env_variable("PIP_ROOT_USER_ACTION", "ignore")
        .with_env_variable("PATH", PATH)
        .with_workdir("/src")
        .with_exec(["python3", "-m", "venv", "/opt/venv"])
        .with_mounted_secret(CA_MOUNT, ca)
        .with_env_variable("PIP_CERT", CA_MOUNT)
        .with_file(TORCH, src.file(TORCH))
        .with_mounted_directory("/wheels", wheels)
        # torch from the local wheel, its own dependencies (pinned beside it) from PyPI
        .with_exec(["pip", "install", "--no-deps", "--find-links", "/wheels", "-r", TORCH])
        .without_mount("/wheels")
        .with_file("requirements/app.lock", src.file("requirements/app.lock"))
        .with_exec(["pip", "install", "--no-deps", "-r", "requirements/app.lock"])
        .without_env_variable("PIP_CERT")
        .without_mount(CA_MOUNT)
        .with_directory("app", src.directory("app"))
        .with_directory("migrations", src.directory("migrations"))
        .with_exec(["python", "-m", "app.train", "--out", "/opt/model/model.pt"])
    )
    return (
        dag.container()
        .from_(runtime)
        .with_exec(USERADD)
        .with_directory("/opt/venv", build.directory("/opt/venv"))
        .with_directory("/opt/model", build.directory("/opt/model"))
        .with_workdir("/app")
        .with_directory("app", src.directory("app"))
        .with_directory("migrations", src.directory("migrations"))
        .with_env_variable("PATH", PATH)
        .with_env_variable("PYTHONUNBUFFERED", "1")
        .with_env_variable("MODEL_PATH", "/opt/model/model.pt")
        .with_user("10001:10001")
        .with_exposed_port(8000)
        .with_default_args(["uvicorn", "app.main:app", "--host", LISTEN, "--port", "8000"])
    )


def frontend(src: dagger.Directory, builder: str, runtime: str) -> dagger.Container:
    """Vite + TypeScript: npm ci from the lockfile, the build, node-only non-root runtime."""
    deps = (
        dag.container()
        .from_(builder)
        .with_mounted_cache("/root/.npm", dag.cache_volume("npm"))
        .with_workdir("/src")
        .with_file("package.json", src.file("package.json"))
        .with_file("package-lock.json", src.file("package-lock.json"))
        .with_mounted_secret(CA_MOUNT, ca_secret())
        .with_env_variable("NODE_EXTRA_CA_CERTS", CA_MOUNT)
        .with_env_variable("npm_config_cafile", CA_MOUNT)
        .with_exec(["npm", "ci", "--no-audit", "--no-fund"])
        .without_env_variable("NODE_EXTRA_CA_CERTS")
        .without_env_variable("npm_config_cafile")
        .without_mount(CA_MOUNT)
    )
    build = deps.with_directory("/src", src, exclude=["node_modules", "dist"]).with_exec(["npm", "run", "build"])
    return (
        dag.container()
        .from_(runtime)
        .with_workdir("/app")
        .with_directory("dist", build.directory("/src/dist"))
        .with_file("server.mjs", src.file("server.mjs"))
        .with_file("server-lib.mjs", src.file("server-lib.mjs"))
        .with_env_variable("NODE_ENV", "production")
        .with_env_variable("PATH", "/nodejs/bin:/usr/local/bin:/usr/bin:/bin")
        .with_user("10001:10001")
        .with_exposed_port(8080)
        .with_default_args(["node", "server.mjs"])
    )


async def run(args: argparse.Namespace) -> str:
    """Connect, build (and publish); the image reference or ``built``."""
    async with dagger.connection():
        src = dag.host().directory(str(args.service_dir), exclude=["node_modules", "dist", "**/__pycache__", "tests"])
        if args.service == "backend":
            image = backend(src, args.builder, args.runtime, dag.host().directory(str(args.wheels)))
        else:
            image = frontend(src, args.builder, args.runtime)
        if args.publish:
            return await image.publish(args.publish)
        await image.sync()
        return "built"


def main() -> int:
    """Parse the arguments and build."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=("backend", "frontend"))
    parser.add_argument("service_dir", type=Path)
    parser.add_argument("--builder", required=True, help="the builder base image (digest reference)")
    parser.add_argument("--runtime", required=True, help="the runtime base image (digest reference)")
    parser.add_argument("--wheels", type=Path, help="the folder holding the torch CPU wheel (backend)")
    parser.add_argument("--publish", help="push the image here")
    args = parser.parse_args()
    print(anyio.run(run, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
