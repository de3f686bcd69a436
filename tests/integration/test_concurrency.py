"""Issue 10: two ``ci`` runs of different branches at once, on one engine and one registry.

Each branch is a repository copy with its own frontend code (a marker string
that survives the bundler) and its own image namespace; both share one stage
cache, the way CI runners of one repository do. Both must pass, each
namespace must hold only its own images (its marker and not the other's),
and every cache entry the two runs wrote at once must read back whole.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

from cargohold.bootstrap import BootstrapReport
from cargohold.local_registry import local_registry_address
from tests.integration.reliability_support import direct, scratch, start, tags, with_cache
from tests.integration.workspace import copy_repo
from tests.reliability import record


def _branch(tmp_path: Path, name: str) -> tuple[Path, str]:
    repo = copy_repo(tmp_path / name)
    marker = f"branch-{name}-{uuid.uuid4().hex[:12]}"
    main_ts = repo / "services/frontend/src/main.ts"
    main_ts.write_text(main_ts.read_text() + f'\nconsole.info("{marker}")\n')
    return repo, marker


def _image_text(namespace: str) -> bytes:
    """The uncompressed top layers of ``namespace``'s frontend image (where the app's bundle is)."""
    registry, path = direct(namespace)
    manifest = json.loads(registry.get_manifest(f"{path}/frontend", "default"))
    return b"".join(gzip.decompress(registry.get_blob(f"{path}/frontend", layer["digest"]))
                    for layer in manifest["layers"][-3:])  # fmt: skip


def test_two_branches_at_once_both_pass_apart_and_share_the_cache_safely(
    bootstrapped: BootstrapReport, tmp_path: Path
) -> None:
    cache = f"{local_registry_address()}/reliability"  # the stage cache the reliability runs fill
    registry, cache_path = direct(cache)
    cache_repo = f"{cache_path}/cache/frontend/default"
    before = set(registry.tags(cache_repo))
    branches = {name: (*_branch(tmp_path, name), scratch(f"rel-{name}")) for name in ("a", "b")}
    procs = {name: start(repo, with_cache(ns, cache), "ci", "--junit", str(repo / "junit.xml"))
             for name, (repo, _, ns) in branches.items()}  # fmt: skip
    done = {name: proc.communicate(timeout=1500) for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"branch {name}: " + done[name][0][-2000:] + done[name][1][-2000:]
        assert "PASSED  integration" in done[name][0], done[name][0]
    (_, marker_a, ns_a), (_, marker_b, ns_b) = branches["a"], branches["b"]
    text_a, text_b = _image_text(ns_a), _image_text(ns_b)
    assert marker_a.encode() in text_a
    assert marker_b.encode() not in text_a, "branch a's image has branch b's code"
    assert marker_b.encode() in text_b
    assert marker_a.encode() not in text_b, "branch b's image has branch a's code"
    assert set(tags(ns_a, "frontend")) & set(tags(ns_b, "frontend")) == {"default"}, "a content tag crossed over"
    written = sorted(set(registry.tags(cache_repo)) - before)
    builds = [t for t in written if t.startswith("build-")]
    assert len(builds) == 2, f"wanted one new build stage per branch, got {written}"
    for tag in written:  # each read back whole: get_blob checks every byte against its digest
        manifest = json.loads(registry.get_manifest(cache_repo, tag))
        for blob in [manifest["config"], *manifest["layers"]]:
            registry.get_blob(cache_repo, blob["digest"])
    record("concurrency", "two ci runs of different branches at once", "one engine, one registry, one stage cache",
           f"both passed (lint, test, build, integration); each namespace has only its own code; {len(written)} "
           "cache entries written at once all read back whole")  # fmt: skip
