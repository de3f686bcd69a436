"""Builder and runtime stages of a Python service, as code.

    runtime-base  slim base + the non-root user                 key: the base + the user
    heavy         heavy requirements (torch) → /opt/heavy      key: that file + index + base
    dependencies  the lockfile → /opt/venv                      key: the lockfile + base
    app           the app's files → /app                        key: those files
    bake          venv + heavy + bake inputs → the model folder key: those files + heavy + dependencies
                  (bake-packages = "heavy": heavy alone, so a lockfile change keeps the model)
    runtime       runtime-base + /opt/heavy + /opt/venv + /app + model: the stages' own layers

Every stage produces one folder, at the path the runtime keeps it. A stage reads
only the folders of the stages it names (``reads``), so any of them can come
from the registry cache instead of being built (see ``stage_cache``), and the
runtime is assembled from the cache entries' layers (see ``assemble``). Heavy,
rarely changing packages get their own stage and layer: a change to any other
dependency leaves the torch layer, its cache entry and its registry blobs
untouched. The runtime venv has no pip: packages are installed with the
builder's pip, run by the venv's own interpreter (see ``PIP``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

import dagger
from dagger import dag

from cargohold.base_images import (
    BUILDER_TOOLS_LABEL,
    BUILDER_TOOLS_PATHS,
    BUILDER_TOOLS_SCRIPT,
    BUILDER_VENV,
    PIP_TOOL,
)
from cargohold.cache import pip_cache
from cargohold.config import PythonConfig, VariantConfig
from cargohold.keys import RUNTIME_BASE
from cargohold.trust import with_ca_bundle, without_ca_bundle

VENV: Final = BUILDER_VENV
HEAVY: Final = "/opt/heavy"
APP: Final = "/app"
SRC: Final = "/src"
WHEELHOUSE: Final = "/wheelhouse"
RUNTIME_UID: Final = 10001
RUNTIME_USER: Final = "app"
PATH: Final = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PTH_FILE: Final = "cargohold-heavy.pth"
# Writes the .pth file through which the venv finds the heavy folder (installed apart, with --target).
_HEAVY_PTH: Final = (
    f"{VENV}/bin/python", "-c",
    f"import sysconfig, pathlib; pathlib.Path(sysconfig.get_path('purelib'), {PTH_FILE!r}).write_text({HEAVY!r})",
)  # fmt: skip
# The builder's pip, run by the venv's own interpreter: it installs into the venv, and starts once
# (``pip --python`` starts pip, which starts the target interpreter and pip again in it).
PIP: Final = (f"{VENV}/bin/python", f"{PIP_TOOL}/pip/__pip-runner__.py", "--disable-pip-version-check")
# Removes the config's prune globs under a folder ("site" means the venv's site-packages).
PRUNE: Final = (
    "import glob, os, shutil, sys, sysconfig\n"
    "root = sysconfig.get_path('purelib') if sys.argv[1] == 'site' else sys.argv[1]\n"
    "for pattern in sys.argv[2:]:\n"
    "    for path in glob.glob(os.path.join(root, pattern), recursive=True):\n"
    "        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)\n"
)

# Splits a venv into one folder per installed package, by each package's RECORD (the files pip wrote):
#   parts.py before <venv> <listing>        the files of the empty venv, before pip runs
#   parts.py split <venv> <out> <listing> <name>...   every package's files moved to <out>/<name>/,
# relative to the venv. A file that no RECORD lists and the empty venv did not have fails the split,
# as does a package that is not among the names: nothing is ever left out of a layer silently.
PARTS_SCRIPT: Final = "/opt/cargohold/parts.py"
PARTS: Final = """\
import csv, os, pathlib, re, shutil, sys, sysconfig

def files(root):
    return {os.path.relpath(os.path.join(d, f), root) for d, dirs, names in os.walk(root)
            for f in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]}

def normalized(name):
    name = re.sub(r"[-_.]+", "-", name).lower()
    return "pkg-venv" if name == "venv" else name

mode, venv = sys.argv[1], pathlib.Path(sys.argv[2])
if mode == "before":
    pathlib.Path(sys.argv[3]).write_text("\\n".join(sorted(files(venv))))
    sys.exit(0)
out, before, names = pathlib.Path(sys.argv[3]), set(pathlib.Path(sys.argv[4]).read_text().splitlines()), sys.argv[5:]
site = pathlib.Path(sysconfig.get_path("purelib"))
for name in names:
    (out / name).mkdir(parents=True)  # a package whose marker excludes it here is an empty layer
for info in sorted(site.glob("*.dist-info")):
    meta = (info / "METADATA").read_text(errors="replace").splitlines()
    name = normalized(next(line.split(":", 1)[1].strip() for line in meta if line.startswith("Name:")))
    if name not in names:
        sys.exit(f"pip installed {name}, which the requirements do not list")
    for row in list(csv.reader((info / "RECORD").read_text().splitlines())):
        path = pathlib.Path(os.path.normpath(site / row[0]))
        if path.exists() or path.is_symlink():  # else pruned
            target = out / name / path.relative_to(venv)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
if left := sorted(files(venv) - before):
    sys.exit(f"{len(left)} files belong to no package's RECORD, e.g. {left[:3]}")
"""

Outputs = Mapping[str, dagger.Directory]


@dataclass(frozen=True)
class PythonStages:
    """The stages of one Python service and variant; every method is lazy graph assembly."""

    src: dagger.Directory  # the service folder, already narrowed to its build context
    settings: PythonConfig
    variant: VariantConfig
    builder_image: str
    runtime_image: str
    wheelhouse: dagger.Directory | None = None
    ca_bundle: dagger.File | None = None
    builder_tools: bool = False  # the builder image has /opt/pip-tool/pip and /opt/venv (see with_base_facts)

    async def with_base_facts(self) -> PythonStages:
        """These stages, knowing whether the builder image brings the pip and the venv (its label says so)."""
        label = await dag.container().from_(self.builder_image).label(BUILDER_TOOLS_LABEL)
        return replace(self, builder_tools=label == BUILDER_TOOLS_PATHS)

    def base_of(self, stage: str) -> str | None:
        """The base image ``stage`` is built from (None: it needs none)."""
        if stage in ("heavy", "dependencies", "bake"):
            return self.builder_image
        return self.runtime_image if stage == RUNTIME_BASE else None

    def reads(self, stage: str) -> tuple[str, ...]:
        """The stages whose folders ``stage`` builds on (they must be in the engine first)."""
        if stage != "bake":
            return ()
        return ("heavy",) if self.settings.bake_packages == "heavy" else ("heavy", "dependencies")

    def dev_reads(self) -> tuple[str, ...]:
        """The stages lint and unit tests run on."""
        return ("heavy", "dependencies")

    def output_path(self, stage: str) -> str:
        """Where a stage's folder is, in its cache entry and in the runtime."""
        return {
            "heavy": HEAVY, "dependencies": VENV, "app": APP, "bake": self.settings.bake_output or "/opt/bake",
        }[stage]  # fmt: skip

    def layers_apart(self, stage: str) -> tuple[str, ...]:
        """Globs of ``stage``'s folder that get layers of their own in its entry (``heavy-split``)."""
        return self.settings.heavy_split if stage == "heavy" else ()

    def stage(self, name: str, outputs: Outputs) -> dagger.Directory:
        """Build one folder stage from the outputs of the stages it reads; its output folder."""
        if name == "app":
            return dag.directory().with_directory(".", self.src, include=_patterns(self.settings.app))
        build = {"heavy": self._heavy, "dependencies": self._dependencies, "bake": self._bake}[name]
        return build(outputs).directory(self.output_path(name))

    def runtime_base(self) -> dagger.Container:
        """The slim base with the non-root user: the runtime's first layers."""
        return dag.container().from_(self.runtime_image).with_exec(_add_user())

    def runtime_layers(self) -> tuple[tuple[str, str], ...]:
        """The stage folders the runtime stacks on its base, in order: rarely changing first."""
        stages = ("heavy", "dependencies", "app", *(("bake",) if self.settings.bake else ()))
        return tuple((stage, self.output_path(stage)) for stage in stages)

    def runtime_env(self) -> tuple[tuple[str, str], ...]:
        """The runtime's environment (the service's own env comes after)."""
        return (("PATH", PATH), ("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1"))

    def runtime_user(self) -> tuple[str, str]:
        """(user, working directory) of the runtime: non-root, numeric."""
        return f"{RUNTIME_UID}:{RUNTIME_UID}", APP

    def dev(self, outputs: Outputs) -> dagger.Container:
        """Dependencies, dev tools and the whole context: where lint and unit tests run."""
        ctr = self._builder().with_directory(VENV, outputs["dependencies"]).with_directory(HEAVY, outputs["heavy"])
        if dev_lock := self.settings.dev_lockfile:
            ctr = ctr.with_file(f"{SRC}/{dev_lock}", self.src.file(dev_lock)).with_exec(
                [*PIP, "install", "--no-deps", "-r", f"{SRC}/{dev_lock}"]
            )
        return (
            ctr.with_(without_ca_bundle(self.ca_bundle))
            .with_directory(APP, self.src)
            .with_workdir(APP)
            .with_env_variable("PATH", PATH)
        )

    def _builder(self) -> dagger.Container:
        """Compilers, a pip of its own, and an empty venv at a fixed path (made here when the base has none)."""
        ctr = (
            dag.container()
            .from_(self.builder_image)
            .with_(with_ca_bundle(self.ca_bundle))
            .with_(pip_cache())
            .with_env_variable("PIP_ROOT_USER_ACTION", "ignore")
        )
        return ctr if self.builder_tools else ctr.with_exec(["sh", "-c", BUILDER_TOOLS_SCRIPT])

    def _heavy(self, _: Outputs) -> dagger.Container:
        """The heavy requirements alone, into their own folder (empty when there are none)."""
        heavy_file = self.variant.heavy or self.settings.heavy
        ctr = self._builder()
        if heavy_file is None:
            return ctr.with_exec(["mkdir", "-p", HEAVY])
        if self.wheelhouse is not None:
            ctr = ctr.with_mounted_directory(WHEELHOUSE, self.wheelhouse)
        install = [*PIP, "install", *self._compile(), "--no-deps", "--target", HEAVY, *self.index_args()]
        return ctr.with_file(f"{SRC}/heavy.txt", self.src.file(heavy_file)).with_exec(
            _one_exec([*install, "-r", f"{SRC}/heavy.txt"], self._prune(HEAVY))
        )

    def _dependencies(self, _: Outputs) -> dagger.Container:
        """The lockfile into the venv, which also finds the heavy folder through a .pth file."""
        lockfile = f"{SRC}/{self.settings.lockfile}"
        return (
            self._builder()
            .with_file(lockfile, self.src.file(self.settings.lockfile))
            .with_exec(
                _one_exec(
                    [*PIP, "install", *self._compile(), "--no-deps", "-r", lockfile],
                    list(_HEAVY_PTH),
                    self._prune("site"),
                )
            )
        )

    def _bake(self, outputs: Outputs) -> dagger.Container:
        """The model made at build time by the service's own command, from the app code only."""
        ctr = self._builder()
        bake = list(self.settings.bake or ())
        # Mounted, not copied: the bake only reads them, and copying torch costs seconds per bake.
        if "dependencies" in self.reads("bake"):
            ctr = ctr.with_mounted_directory(VENV, outputs["dependencies"])
        else:  # torch alone: the builder's empty venv, which finds the heavy folder like the runtime's does
            bake = _one_exec(list(_HEAVY_PTH), bake)
        return (
            ctr.with_mounted_directory(HEAVY, outputs["heavy"])
            # Only what the bake's key covers: a file it reads but does not declare fails here, loudly.
            .with_directory(APP, self.src, include=_patterns(self.settings.baked_from))
            .with_workdir(APP)
            .with_env_variable("PATH", PATH)
            .with_exec(bake)
        )

    def venv_skeleton(self) -> dagger.Directory:
        """The empty runtime venv, with the .pth through which it finds the heavy folder: the packages' first layer."""
        return self._builder().with_exec(list(_HEAVY_PTH)).directory(VENV)

    def packages(self, requirements: str, names: tuple[str, ...]) -> dagger.Directory:
        """Some locked packages, installed into the empty venv and split by package: a folder per name.

        Each folder holds one package's files relative to the venv (``lib/python3.11/site-packages/…``,
        ``bin/…``): stacked on ``venv_skeleton`` in any order, they make the venv that one install would.
        One exec for pip, the prune and the split: a lockfile change pays one container start.
        """
        return (
            self._builder()
            .with_new_file(PARTS_SCRIPT, PARTS)
            .with_new_file(f"{SRC}/packages.txt", requirements)
            .with_exec(
                _one_exec(
                    [f"{VENV}/bin/python", PARTS_SCRIPT, "before", VENV, f"{SRC}/venv-before"],
                    [*PIP, "install", *self._compile(), "--no-deps", "-r", f"{SRC}/packages.txt"],
                    self._prune("site"),
                    [f"{VENV}/bin/python", PARTS_SCRIPT, "split", VENV, "/parts", f"{SRC}/venv-before", *names],
                )
            )
            .directory("/parts")
        )

    def _compile(self) -> list[str]:
        """The bytecode flag of pip: ``bytecode = false`` leaves the .pyc files out of the runtime's packages."""
        return [] if self.settings.bytecode else ["--no-compile"]

    def _prune(self, root: str) -> list[str]:
        """The command that removes the prune globs under ``root`` (empty when there are none)."""
        if not self.settings.prune:
            return []
        return [f"{VENV}/bin/python", "-c", PRUNE, root, *self.settings.prune]

    def index_args(self) -> list[str]:
        """The index arguments pip gets for the heavy requirements (pure)."""
        args: list[str] = []
        if self.variant.index_url:
            args += ["--index-url", self.variant.index_url]
        if self.wheelhouse is not None:
            args += ["--find-links", WHEELHOUSE]
            if not self.variant.index_url:
                args.append("--no-index")  # the wheelhouse is the whole source: no silent PyPI fallback
        elif self.variant.find_links:
            args += ["--find-links", self.variant.find_links]  # a URL
        return args


def _one_exec(*commands: list[str]) -> list[str]:
    """Commands run one after the other in one container, stopping at the first that fails.

    Every exec is a container start and a snapshot: a stage is one exec, not one per step
    (empty commands are left out).
    """
    steps = [command for command in commands if command]
    return steps[0] if len(steps) == 1 else ["sh", "-c", " && ".join(shlex.join(c) for c in steps)]


def _add_user() -> list[str]:
    return [
        "useradd", "--system", "--uid", str(RUNTIME_UID), "--user-group",
        "--no-create-home", "--home-dir", APP, "--shell", "/usr/sbin/nologin", RUNTIME_USER,
    ]  # fmt: skip


def _patterns(paths: tuple[str, ...]) -> list[str]:
    """Include patterns for folders or files of the service (a folder brings its contents)."""
    return [p for path in paths for p in (path, f"{path}/**")]
