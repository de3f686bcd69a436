"""The image facts report: what a built image weighs, why, and what should not be in it.

The analysis is pure: ``analyse`` takes a manifest, an image config and one
tar listing per layer, and every rule is a small function over the image's
final filesystem. ``read_image_facts`` is the thin part that reads those from
a registry.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cargohold.errors import RegistryError
from cargohold.layer_listings import Layer, ListingStore, TarEntry, layer_listing
from cargohold.registry import DOCKER_LIST, OCI_INDEX, Registry, sha256_digest

EXAMPLES: Final = 5  # example paths per finding
_WHITEOUT: Final = ".wh."
_OPAQUE: Final = ".wh..wh..opq"


@dataclass(frozen=True)
class LayerFacts:
    """One layer: its two sizes, the step that made it, and its largest files."""

    digest: str
    compressed_size: int  # from the manifest
    uncompressed_size: int  # the sum of its file sizes
    created_by: str  # from the config history; "" when unknown
    largest_paths: tuple[tuple[str, int], ...]


class FindingKind(enum.Enum):
    """What a finding is about."""

    CUDA_IN_CPU_IMAGE = "cuda-in-cpu-image"
    COMPILER_IN_RUNTIME = "compiler-in-runtime"
    PACKAGE_CACHE = "package-cache"
    RUNS_AS_ROOT = "runs-as-root"
    HOST_VENV = "host-venv"
    NODE_MODULES = "node-modules"
    GIT_DIRECTORY = "git-directory"
    TEST_FILES = "test-files"
    OVER_BUDGET = "over-budget"


@dataclass(frozen=True)
class Finding:
    """Something in the image that should probably not be there."""

    kind: FindingKind
    message: str  # one line a person reads, with the fix
    paths: tuple[str, ...] = ()  # up to EXAMPLES examples, the heaviest first
    bytes: int = 0  # the size involved (for OVER_BUDGET: by how much)


@dataclass(frozen=True)
class ImageFacts:
    """The facts report of one image."""

    reference: str
    digest: str  # of the image manifest (for an index, of its linux/amd64 image)
    compressed_size: int  # the sum of the layers' sizes in the manifest
    uncompressed_size: int  # the sum of the layers' file sizes
    layers: tuple[LayerFacts, ...]
    largest_paths: tuple[tuple[str, int], ...]  # of the final filesystem
    user: str
    budget: int | None  # compressed bytes
    findings: tuple[Finding, ...]

    @property
    def over_budget(self) -> bool:
        """True when the compressed size exceeds the budget."""
        return self.budget is not None and self.compressed_size > self.budget

    def lines(self) -> list[str]:
        """The report as a person reads it: verdict, layers, largest paths, findings."""
        layers = sorted(self.layers, key=lambda layer: -layer.compressed_size)
        return [
            self._headline(),
            "layers, largest first (compressed / uncompressed):",
            *(f"  {_sizes(lf)}  {lf.digest[7:19]}  {_truncate(lf.created_by or '?', 80)}" for lf in layers),
            "largest paths:",
            *(f"  {format_size(size):>10}  {path}" for path, size in self.largest_paths),
            *_finding_lines(self.findings),
        ]

    def _headline(self) -> str:
        sizes = f"{format_size(self.compressed_size)} compressed / {format_size(self.uncompressed_size)} uncompressed"
        if self.budget is None:
            return f"{self.reference} {sizes}, no budget"
        verdict = f"OVER by {format_size(self.compressed_size - self.budget)}" if self.over_budget else "OK"
        return f"{self.reference} {sizes}, budget {format_size(self.budget)}: {verdict}"


def format_size(n: int) -> str:
    """``312.4 MB`` (MB = 10^6 bytes)."""
    return f"{n / 1e6:.1f} MB"


# ---- the pure analysis -------------------------------------------------------------------------


def analyse(
    reference: str,
    digest: str,
    manifest: Mapping[str, Any],
    config: Mapping[str, Any],
    layer_listings: Sequence[Sequence[TarEntry]],
    *,
    budget: int | None,
    variant: str | None,
    role: str = "runtime",
    top: int = 10,
) -> ImageFacts:
    """The facts of an image from its manifest, config and one tar listing per layer (manifest order)."""
    layers = _layers(manifest, config, layer_listings, top)
    files = tuple(merge_layers(layer_listings).values())
    largest = _largest(files, top)
    compressed = sum(layer.compressed_size for layer in layers)
    image = _Image(files, role, variant, str((config.get("config") or {}).get("User") or ""))
    findings = [*_rule_findings(image), _over_budget(compressed, budget, layers, largest)]
    uncompressed = sum(layer.uncompressed_size for layer in layers)
    kept = tuple(f for f in findings if f is not None)
    return ImageFacts(reference, digest, compressed, uncompressed, layers, largest, image.user, budget, kept)


def merge_layers(listings: Iterable[Sequence[TarEntry]]) -> dict[str, TarEntry]:
    """The final filesystem, path → entry: later layers win, whiteouts delete what lower layers had."""
    merged: dict[str, TarEntry] = {}
    for entries in listings:
        for entry in entries:
            _apply_whiteout(merged, entry.path)
        merged.update({e.path: e for e in entries if not e.path.rpartition("/")[2].startswith(_WHITEOUT)})
    return merged


def _apply_whiteout(merged: dict[str, TarEntry], path: str) -> None:
    """``dir/.wh.name`` deletes ``dir/name`` and what is under it; ``dir/.wh..wh..opq`` empties ``dir``."""
    parent, _, name = path.rpartition("/")
    if not name.startswith(_WHITEOUT):
        return
    gone = parent if name == _OPAQUE else f"{parent}/{name.removeprefix(_WHITEOUT)}"
    entry = None if name == _OPAQUE else merged.pop(gone, None)
    if entry is None or entry.kind == "dir":  # only a folder (or one the tar left implicit) has paths under it
        for p in [p for p in merged if p.startswith(f"{gone}/")]:
            del merged[p]


def _layers(
    manifest: Mapping[str, Any], config: Mapping[str, Any], listings: Sequence[Sequence[TarEntry]], top: int
) -> tuple[LayerFacts, ...]:
    descriptors = manifest.get("layers", [])
    steps = _layer_steps(config, len(descriptors))
    return tuple(
        LayerFacts(str(d["digest"]), int(d["size"]), sum(e.size for e in entries), step, _largest(entries, top))
        for d, step, entries in zip(descriptors, steps, listings, strict=True)
    )


def _layer_steps(config: Mapping[str, Any], count: int) -> list[str]:
    """``created_by`` per layer: history entries that made a layer, in order; all "" when they do not line up."""
    history = config.get("history") or []
    steps = [str(h.get("created_by", "")) for h in history if not h.get("empty_layer", False)]
    return steps if len(steps) == count else [""] * count


def _largest(entries: Iterable[TarEntry], top: int) -> tuple[tuple[str, int], ...]:
    files = sorted((e for e in entries if e.kind == "file"), key=lambda e: (-e.size, e.path))
    return tuple((e.path, e.size) for e in files[:top])


# ---- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    """What the rules look at: the final filesystem and how the image is meant to be used."""

    files: tuple[TarEntry, ...]
    role: str
    variant: str | None
    user: str


@dataclass(frozen=True)
class _PathRule:
    """A finding for every non-directory path that ``matches``, when the rule ``applies`` to the image."""

    kind: FindingKind
    applies: Callable[[_Image], bool]
    matches: Callable[[str], object]
    group: tuple[str, ...] = ()  # examples are the folders of these names, not each file


def _always(_: _Image) -> bool:
    return True


def _runtime(image: _Image) -> bool:
    return image.role == "runtime"


def _cpu_variant(image: _Image) -> bool:
    return image.variant is not None and "cpu" in re.split(r"[^a-z0-9]+", image.variant.lower())


def _has_folder(*names: str, outside: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """A matcher: the path has a folder of one of ``names`` and does not start with one of ``outside``."""
    return lambda path: not path.startswith(outside) and not set(names).isdisjoint(path.split("/")[:-1])


_CUDA: Final = re.compile(
    r"/(libcudart|libcublas|libcudnn|libnccl)[^/]*$|/site-packages/nvidia/|/torch/lib/libtorch_cuda\.so$"
)
_COMPILER: Final = re.compile(
    r"^/usr/bin/(gcc[^/]*|g\+\+[^/]*|cc|c\+\+|x86_64-linux-gnu-(gcc|g\+\+)[^/]*|clang[^/]*)$|^/usr/(lib|libexec)/gcc/"
)
_CACHE: Final = re.compile(
    r"/\.cache/(pip|uv|pypoetry|yarn)/|^/root/\.npm/|/\.npm/_cacache/"
    r"|^/var/cache/apt/archives/[^/]+\.deb$|^/var/lib/apt/lists/(?!lock$)[^/]+$"
)
# System and installed-library folders: their tests are not the app's (/opt/heavy is a --target site).
_SYSTEM: Final = ("/usr/", "/lib/", "/lib64/", "/etc/", "/opt/venv/lib/", "/opt/heavy/")
_LIBRARIES: Final = ("site-packages", "dist-packages", "node_modules")
_GLOBAL_NODE: Final = ("/usr/local/lib/node_modules/", "/usr/lib/node_modules/")  # npm itself, corepack


def _app_tests(path: str) -> bool:
    """A file under a tests/ or test/ folder of the app, not of an installed library."""
    return _has_folder("tests", "test", outside=_SYSTEM)(path) and not _has_folder(*_LIBRARIES)(path)


# What each path rule reports; {} is "<size> in <count> paths".
_ADVICE: Final = {
    FindingKind.CUDA_IN_CPU_IMAGE: "CUDA libraries in a CPU image ({}): install the CPU wheels",
    FindingKind.COMPILER_IN_RUNTIME: "compilers in a runtime image ({}): compile in a builder stage, copy the results",
    FindingKind.PACKAGE_CACHE: "package-manager caches ({}): use a cache mount, or clean up in the same step",
    FindingKind.HOST_VENV: "a .venv in the image ({}): exclude .venv from the build context",
    FindingKind.NODE_MODULES: "node_modules in a runtime image ({}): copy only the built assets",
    FindingKind.GIT_DIRECTORY: "a .git directory in the image ({}): exclude .git from the build context",
    FindingKind.TEST_FILES: "test files in a runtime image ({}): prune them (python.prune) or copy only the app",
}
_PATH_RULES: Final = (
    _PathRule(FindingKind.CUDA_IN_CPU_IMAGE, _cpu_variant, _CUDA.search),
    _PathRule(FindingKind.COMPILER_IN_RUNTIME, _runtime, _COMPILER.search, ("gcc",)),
    _PathRule(FindingKind.PACKAGE_CACHE, _always, _CACHE.search),
    _PathRule(FindingKind.HOST_VENV, _always, _has_folder(".venv"), (".venv",)),
    _PathRule(FindingKind.NODE_MODULES, _runtime, _has_folder("node_modules", outside=_GLOBAL_NODE), ("node_modules",)),
    _PathRule(FindingKind.GIT_DIRECTORY, _always, _has_folder(".git"), (".git",)),
    _PathRule(FindingKind.TEST_FILES, _runtime, _app_tests, ("tests", "test")),
)


def _rule_findings(image: _Image) -> list[Finding | None]:
    return [_path_finding(rule, image) for rule in _PATH_RULES if rule.applies(image)] + [_runs_as_root(image)]


def _path_finding(rule: _PathRule, image: _Image) -> Finding | None:
    hits = [e for e in image.files if e.kind != "dir" and rule.matches(e.path)]
    if not hits:
        return None
    weights: dict[str, int] = {}
    for entry in hits:
        example = _folder(entry.path, rule.group)
        weights[example] = weights.get(example, 0) + entry.size
    total = sum(weights.values())
    examples = tuple(sorted(weights, key=lambda p: (-weights[p], p))[:EXAMPLES])
    message = _ADVICE[rule.kind].format(f"{format_size(total)} in {len(hits)} paths")
    return Finding(rule.kind, message, examples, total)


def _folder(path: str, names: tuple[str, ...]) -> str:
    """``path`` cut after its first folder named in ``names`` (``/app/.venv/bin/x`` → ``/app/.venv``)."""
    parts = path.split("/")
    cut = next((i for i, part in enumerate(parts[:-1]) if part in names), None)
    return path if cut is None else "/".join(parts[: cut + 1])


def _runs_as_root(image: _Image) -> Finding | None:
    if not _runtime(image) or image.user.partition(":")[0] not in {"", "root", "0"}:
        return None
    who = f"User {image.user!r}" if image.user else "no User set"
    return Finding(FindingKind.RUNS_AS_ROOT, f"runs as root ({who}) — set USER to an unprivileged uid")


def _over_budget(
    compressed: int, budget: int | None, layers: Sequence[LayerFacts], largest: Sequence[tuple[str, int]]
) -> Finding | None:
    if budget is None or compressed <= budget:
        return None
    big = sorted(layers, key=lambda layer: -layer.compressed_size)[:3]
    named = "; ".join(
        f"{format_size(lf.compressed_size)} {_truncate(lf.created_by or lf.digest[:19], 60)}" for lf in big
    )
    excess = compressed - budget
    message = f"{format_size(excess)} over the budget of {format_size(budget)}; largest layers: {named}"
    return Finding(FindingKind.OVER_BUDGET, message, tuple(path for path, _ in largest[:EXAMPLES]), excess)


def _finding_lines(findings: Sequence[Finding]) -> list[str]:
    if not findings:
        return ["findings: none"]
    lines = ["findings:"]
    for f in findings:
        lines += [f"  {f.kind.value}: {f.message}", *([f"    {', '.join(f.paths)}"] if f.paths else [])]
    return lines


def _sizes(layer: LayerFacts) -> str:
    return f"{format_size(layer.compressed_size):>10} / {format_size(layer.uncompressed_size):>10}"


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---- reading from a registry -------------------------------------------------------------------


def read_image_facts(
    registry: Registry,
    repository: str,
    reference: str,
    *,
    budget: int | None = None,
    variant: str | None = None,
    role: str = "runtime",
    top: int = 10,
    listings: ListingStore | None = None,
) -> ImageFacts:
    """The facts of ``repository:reference`` (a tag or digest); from an index, its linux/amd64 image.

    Layer listings are kept in ``listings`` (the cache namespace's store) too, when given.
    """
    digest, manifest = image_manifest(registry, repository, reference)
    config = json.loads(registry.get_blob(repository, str(manifest["config"]["digest"])))
    layers = [Layer(registry, repository, str(layer["digest"])) for layer in manifest["layers"]]
    tars = [layer_listing(layer, listings) for layer in layers]
    name = f"{repository}{'@' if reference.startswith('sha256:') else ':'}{reference}"
    return analyse(name, digest, manifest, config, tars, budget=budget, variant=variant, role=role, top=top)


def compressed_size(registry: Registry, repository: str, reference: str) -> int:
    """An image's compressed size from its manifest alone (no layer is read)."""
    _, manifest = image_manifest(registry, repository, reference)
    return sum(int(layer["size"]) for layer in manifest["layers"])


def image_manifest(registry: Registry, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    """The digest and manifest of ``repository:reference``; from an index, its linux/amd64 image."""
    digest, manifest = _manifest(registry, repository, reference)
    if manifest.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
        return _manifest(registry, repository, amd64_manifest(manifest, repository))
    return digest, manifest


def _manifest(registry: Registry, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    raw = registry.get_manifest(repository, reference)
    digest = sha256_digest(raw)
    if reference.startswith("sha256:") and digest != reference:
        msg = f"the manifest {reference[:19]} of {repository} does not match its digest"
        raise RegistryError(msg, "the registry storage is corrupt: delete and push the image again")
    manifest: dict[str, Any] = json.loads(raw)
    return digest, manifest


def amd64_manifest(index: Mapping[str, Any], repository: str) -> str:
    """The digest of an image index's linux/amd64 manifest; RegistryError when it has none."""
    for entry in index.get("manifests", []):
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    msg = f"the image index of {repository} has no linux/amd64 image"
    raise RegistryError(msg, "build and push the image for linux/amd64")


def gate_problems(facts: ImageFacts, allowed: Iterable[str] = ()) -> list[str]:
    """What makes a runtime image fail its gate: every finding not explicitly allowed (pure).

    Over budget, compilers, package caches, a root user, a host venv, node_modules, .git,
    CUDA in a CPU image and test files all fail, unless the service lists the finding's
    kind (e.g. ``"test-files"``) in ``allow-findings``.
    """
    allow = set(allowed)
    return [f"{f.kind.value}: {f.message}" for f in facts.findings if f.kind.value not in allow]
