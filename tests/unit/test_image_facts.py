"""The image facts report: every rule on planted paths and on a clean listing, sizes, budgets, the text."""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Any

import pytest

from cargohold.errors import RegistryError
from cargohold.image_facts import (
    Finding,
    FindingKind,
    ImageFacts,
    TarEntry,
    amd64_manifest,
    analyse,
    format_size,
    merge_layers,
)
from cargohold.layer_listings import list_layer

MB = 1_000_000
CLEAN = [
    TarEntry("/usr", 0, "dir"),
    TarEntry("/usr/bin/python3.11", 6 * MB),
    TarEntry("/usr/bin/python3", 0, "symlink"),
    TarEntry("/usr/lib/python3.11/unittest/test/test_case.py", 40_000),
    TarEntry("/opt/venv/lib/python3.11/site-packages/numpy/tests/test_core.py", 90_000),
    TarEntry("/opt/venv/lib/python3.11/site-packages/app/__pycache__/main.cpython-311.pyc", 3_000),
    TarEntry("/var/lib/apt/lists/lock", 0),
    TarEntry("/var/lib/apt/lists/partial", 0, "dir"),
    TarEntry("/usr/local/lib/node_modules/npm/package.json", 5_000),
    TarEntry("/app/main.py", 2_000),
]


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _manifest(*sizes: int) -> dict[str, Any]:
    return {"layers": [{"digest": _digest(i + 1), "size": size} for i, size in enumerate(sizes)]}


def _config(user: str = "app", history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"config": {"User": user}, "history": history or []}


def _facts(
    *listings: list[TarEntry],
    sizes: tuple[int, ...] = (),
    user: str = "app",
    budget: int | None = None,
    variant: str | None = None,
    role: str = "runtime",
    history: list[dict[str, Any]] | None = None,
) -> ImageFacts:
    sizes = sizes or tuple(MB for _ in listings)
    config = _config(user, history)
    return analyse(
        "backend:cpu", _digest(99), _manifest(*sizes), config, list(listings), budget=budget, variant=variant, role=role
    )


def _kinds(facts: ImageFacts) -> set[FindingKind]:
    return {f.kind for f in facts.findings}


def _finding(facts: ImageFacts, kind: FindingKind) -> Finding:
    found = [f for f in facts.findings if f.kind is kind]
    assert len(found) == 1, f"wanted one {kind.name} finding, got {facts.findings}"
    return found[0]


def test_a_clean_runtime_listing_has_no_findings() -> None:
    facts = _facts(CLEAN, variant="cpu", budget=10 * MB)
    assert facts.findings == (), f"wanted no findings, got {facts.findings}"


def test_compilers_are_found_in_a_runtime_image_but_not_in_a_builder() -> None:
    planted = [
        *CLEAN,
        TarEntry("/usr/bin/gcc", 0, "symlink"),
        TarEntry("/usr/bin/x86_64-linux-gnu-gcc-12", 1 * MB),
        TarEntry("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 30 * MB),
        TarEntry("/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus", 35 * MB),
        TarEntry("/usr/bin/make", 200_000),
    ]
    finding = _finding(_facts(planted), FindingKind.COMPILER_IN_RUNTIME)
    assert finding.bytes == 66 * MB, f"wanted 66 MB of compilers, got {finding.bytes}"
    assert finding.paths == ("/usr/lib/gcc", "/usr/bin/x86_64-linux-gnu-gcc-12", "/usr/bin/gcc"), finding.paths
    assert "66.0 MB in 4 paths" in finding.message, finding.message
    assert FindingKind.COMPILER_IN_RUNTIME not in _kinds(_facts(planted, role="builder"))


@pytest.mark.parametrize(
    "path",
    [
        "/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
        "/opt/venv/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so",
        "/usr/lib/x86_64-linux-gnu/libcudnn.so.9",
        "/usr/local/cuda/lib64/libcudart.so.12.4.127",
        "/usr/lib/x86_64-linux-gnu/libnccl.so.2",
    ],
)
def test_cuda_libraries_are_found_in_a_cpu_variant_only(path: str) -> None:
    planted = [*CLEAN, TarEntry(path, 400 * MB)]
    finding = _finding(_facts(planted, variant="cpu"), FindingKind.CUDA_IN_CPU_IMAGE)
    assert (finding.paths, finding.bytes) == ((path,), 400 * MB)
    for variant in ("cuda", None, "cuda12-cpubuild"):
        kinds = _kinds(_facts(planted, variant=variant))
        assert FindingKind.CUDA_IN_CPU_IMAGE not in kinds, f"wanted no CUDA finding for variant {variant}, got one"


@pytest.mark.parametrize(
    "path",
    [
        "/root/.cache/pip/http-v2/a/b/c",
        "/home/app/.cache/uv/wheels-v1/x.whl",
        "/root/.npm/_logs/debug.log",
        "/home/node/.npm/_cacache/content-v2/sha512/ab/cd",
        "/var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb",
        "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
    ],
)
def test_package_manager_caches_are_found(path: str) -> None:
    finding = _finding(_facts([*CLEAN, TarEntry(path, 3 * MB)]), FindingKind.PACKAGE_CACHE)
    assert (finding.paths, finding.bytes) == ((path,), 3 * MB)


def test_pycache_and_an_empty_apt_lists_folder_are_not_caches() -> None:
    assert FindingKind.PACKAGE_CACHE not in _kinds(_facts(CLEAN))


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:root"])
def test_root_users_are_found_in_a_runtime_image(user: str) -> None:
    finding = _finding(_facts(CLEAN, user=user), FindingKind.RUNS_AS_ROOT)
    assert "runs as root" in finding.message, finding.message
    assert FindingKind.RUNS_AS_ROOT not in _kinds(_facts(CLEAN, user=user, role="builder"))


@pytest.mark.parametrize("user", ["1000", "app", "10001:10001", "nobody:0"])
def test_other_users_are_not_root(user: str) -> None:
    assert FindingKind.RUNS_AS_ROOT not in _kinds(_facts(CLEAN, user=user)), f"user {user!r}"


def test_the_user_is_reported() -> None:
    assert _facts(CLEAN, user="10001:10001").user == "10001:10001"


@pytest.mark.parametrize(
    ("kind", "planted", "example", "roles"),
    [
        (FindingKind.HOST_VENV, "/app/.venv/lib/python3.11/site-packages/x.py", "/app/.venv", {"runtime", "builder"}),
        (FindingKind.GIT_DIRECTORY, "/app/.git/objects/pack/pack-1.pack", "/app/.git", {"runtime", "builder"}),
        (
            FindingKind.NODE_MODULES,
            "/usr/share/nginx/html/node_modules/react/index.js",
            "/usr/share/nginx/html/node_modules",
            {"runtime"},
        ),
        (FindingKind.TEST_FILES, "/app/tests/unit/test_main.py", "/app/tests", {"runtime"}),
        (FindingKind.TEST_FILES, "/srv/app/test/fixtures.json", "/srv/app/test", {"runtime"}),
    ],
)
def test_folders_that_should_not_be_shipped(kind: FindingKind, planted: str, example: str, roles: set[str]) -> None:
    listing = [*CLEAN, TarEntry(planted, 2 * MB), TarEntry(f"{example}/sub", 0, "dir")]
    finding = _finding(_facts(listing), kind)
    assert (finding.paths, finding.bytes) == ((example,), 2 * MB)
    fired = {role for role in ("runtime", "builder") if kind in _kinds(_facts(listing, role=role))}
    assert fired == roles, f"{kind.name}: wanted it in {roles} images, got {fired}"


def test_library_tests_and_global_npm_are_not_findings() -> None:
    planted = [
        TarEntry("/usr/lib/python3/dist-packages/yaml/tests/test_load.py", MB),
        TarEntry("/srv/venv/lib/python3.11/site-packages/pandas/tests/frame/test_api.py", MB),
        TarEntry("/app/node_modules/lodash/test/test.js", MB),
        TarEntry("/usr/local/lib/node_modules/corepack/dist/lib.js", MB),
    ]
    assert _kinds(_facts(planted)) == {FindingKind.NODE_MODULES}, "only /app/node_modules is a finding"


def test_later_layers_win_and_whiteouts_delete() -> None:
    lower = [
        TarEntry("/app/big.bin", 50 * MB),
        TarEntry("/app/data", 0, "dir"),
        TarEntry("/app/data/a.bin", 20 * MB),
        TarEntry("/app/cache/b.bin", 30 * MB),
        TarEntry("/app/model.bin", 5 * MB),
        TarEntry("/srv/tmp/implicit-folder.bin", 9 * MB),
    ]
    upper = [
        TarEntry("/app/.wh.big.bin", 0),
        TarEntry("/app/.wh.data", 0),
        TarEntry("/app/cache/.wh..wh..opq", 0),
        TarEntry("/app/cache/c.bin", 1 * MB),
        TarEntry("/app/model.bin", 8 * MB),
        TarEntry("/srv/.wh.tmp", 0),
    ]
    facts = _facts(lower, upper)
    want = (("/app/model.bin", 8 * MB), ("/app/cache/c.bin", 1 * MB))
    assert facts.largest_paths == want, f"wanted {want}, got {facts.largest_paths}"
    assert set(merge_layers([lower, upper])) == {"/app/model.bin", "/app/cache/c.bin"}


def test_layers_carry_their_sizes_step_and_largest_files() -> None:
    history = [
        {"created_by": "FROM python", "empty_layer": False},
        {"created_by": "ENV X=1", "empty_layer": True},
        {"created_by": "RUN pip install -r requirements.txt"},
    ]
    facts = _facts(CLEAN, [TarEntry("/opt/venv/x.so", 7 * MB)], sizes=(30 * MB, 4 * MB), history=history)
    base, deps = facts.layers
    assert (base.digest, base.compressed_size, base.created_by) == (_digest(1), 30 * MB, "FROM python")
    assert (deps.created_by, deps.uncompressed_size, deps.largest_paths) == (
        "RUN pip install -r requirements.txt",
        7 * MB,
        (("/opt/venv/x.so", 7 * MB),),
    )
    assert base.uncompressed_size == sum(e.size for e in CLEAN)
    assert (facts.compressed_size, facts.uncompressed_size) == (34 * MB, base.uncompressed_size + 7 * MB)


def test_a_config_without_user_or_history_is_read() -> None:
    facts = analyse("x", _digest(9), _manifest(MB), {"config": None}, [CLEAN], budget=None, variant=None)
    assert (facts.user, facts.layers[0].created_by) == ("", "")
    assert FindingKind.RUNS_AS_ROOT in _kinds(facts)


def test_history_that_does_not_line_up_is_unknown() -> None:
    facts = _facts(CLEAN, CLEAN, history=[{"created_by": "one step for two layers"}])
    assert [layer.created_by for layer in facts.layers] == ["", ""]


def test_budget_over_and_under() -> None:
    listing = [TarEntry(f"/app/f{i}.bin", i * MB) for i in range(1, 8)]
    history = [{"created_by": "FROM base"}, {"created_by": "COPY . /app"}]
    facts = _facts(CLEAN, listing, sizes=(200 * MB, 150 * MB), budget=300 * MB, history=history)
    assert facts.over_budget
    finding = _finding(facts, FindingKind.OVER_BUDGET)
    assert finding.bytes == 50 * MB
    assert finding.paths == ("/app/f7.bin", "/app/f6.bin", "/usr/bin/python3.11", "/app/f5.bin", "/app/f4.bin")
    want = "50.0 MB over the budget of 300.0 MB; largest layers: 200.0 MB FROM base; 150.0 MB COPY . /app"
    assert finding.message == want, f"wanted {want!r}, got {finding.message!r}"
    for budget in (350 * MB, None):
        under = _facts(CLEAN, listing, sizes=(200 * MB, 150 * MB), budget=budget)
        assert not under.over_budget
        assert FindingKind.OVER_BUDGET not in _kinds(under)


def test_lines_give_sizes_verdict_layers_paths_and_findings() -> None:
    facts = _facts(CLEAN, sizes=(312_400_000,), budget=350 * MB, user="root", history=[{"created_by": "FROM x"}])
    lines = facts.lines()
    want = f"backend:cpu 312.4 MB compressed / {format_size(facts.uncompressed_size)} uncompressed, budget 350.0 MB: OK"
    assert lines[0] == want, f"wanted {want!r}, got {lines[0]!r}"
    assert any("312.4 MB" in line and "FROM x" in line for line in lines[1:]), lines
    assert "      6.0 MB  /usr/bin/python3.11" in lines, lines
    assert lines[-1].startswith("  runs-as-root: runs as root"), lines
    over = _facts(CLEAN, sizes=(312_400_000,), budget=300 * MB).lines()[0]
    assert over.endswith("budget 300.0 MB: OVER by 12.4 MB"), over
    assert _facts(CLEAN).lines()[-1] == "findings: none"


def test_format_size() -> None:
    assert [format_size(n) for n in (312_449_999, 0, 1_012_000_000)] == ["312.4 MB", "0.0 MB", "1012.0 MB"]


def _tar(members: list[tuple[str, bytes | None, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind or tarfile.REGTYPE
            info.linkname = "target" if kind == tarfile.SYMTYPE else ""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("compress", [gzip.compress, bytes], ids=["gzip", "plain"])
def test_list_layer_reads_a_tar_stream(compress: Any) -> None:
    blob = _tar(
        [
            ("./", tarfile.DIRTYPE, b""),
            ("./usr/bin/", tarfile.DIRTYPE, b""),
            ("./usr/bin/python3.11", None, b"x" * 1234),
            ("usr/bin/python3", tarfile.SYMTYPE, b""),
            ("./dev/null", tarfile.CHRTYPE, b""),
            ("app/.wh.old.py", None, b""),
        ]
    )
    assert list_layer(compress(blob)) == (
        TarEntry("/", 0, "dir"),
        TarEntry("/usr/bin", 0, "dir"),
        TarEntry("/usr/bin/python3.11", 1234, "file"),
        TarEntry("/usr/bin/python3", 0, "symlink"),
        TarEntry("/dev/null", 0, "other"),
        TarEntry("/app/.wh.old.py", 0, "file"),
    )


def test_list_layer_refuses_what_is_not_a_tar() -> None:
    with pytest.raises(tarfile.TarError):
        list_layer(b"\x28\xb5\x2f\xfd not a tar (zstd magic)")


def test_an_index_resolves_to_its_linux_amd64_image() -> None:
    index = {
        "manifests": [
            {"digest": _digest(1), "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": _digest(2), "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    assert amd64_manifest(index, "acme/app") == _digest(2)
    with pytest.raises(RegistryError, match="no linux/amd64 image"):
        amd64_manifest({"manifests": index["manifests"][:1]}, "acme/app")
