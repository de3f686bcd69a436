"""Fresh-runner times: what a CI runner with an empty engine pays, thanks to the registry cache.

    python bench/fresh_runner.py [--json out.json]

Each scenario runs the real CLI (``pipelines.py build``) against a copy of the
repository, in a registry namespace of its own, on a *fresh* engine: a second
native engine with empty state, in a network namespace of its own
(``tests/integration/testhost.py``), sharing nothing but the registry with
the engine that warmed the cache. Scenarios:

- cold: empty registry namespace, fresh engine (everything built and exported);
- no change: the same inputs again (nothing to build: no engine is started);
- code-only change: one line in the backend's app code;
- dependency change: one more package in the backend's lockfile.

One run each, wall-clock seconds; the machine is noisy, read them as such.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.testhost import TestHost, second_host  # noqa: E402 - after the path is set
from tests.integration.workspace import copy_repo, runner_env  # noqa: E402


def fresh_env(host: TestHost, namespace: str, state: Path, *, engine: bool = True) -> dict[str, str]:
    """A fresh runner inside the test host (or one without any engine), building into ``namespace``."""
    env = runner_env(
        f"{host.registry}/{namespace}",
        CARGOHOLD_LOCAL_REGISTRY=host.registry,
        CARGOHOLD_PLAIN_HTTP_REGISTRIES=host.registry,
        CARGOHOLD_CACHE_DIR=str(state),
    )
    if not engine:
        return env | {"CARGOHOLD_ENGINE_DIR": "none"}
    return env | {
        "CARGOHOLD_ENGINE_NETNS": host.netns,
        "CARGOHOLD_ENGINE_CONFIG": str(host.engine_config),
        "CARGOHOLD_ENGINE_NETWORK": "chbench:10.90.0.0/16",
    }


def timed_build(repo: Path, env: dict[str, str], report: Path) -> dict[str, object]:
    """One ``build`` run: its wall time and cache report; the fresh engine is stopped afterwards."""
    cli = [sys.executable, str(ROOT / "pipelines.py"), "--config", str(repo / "cargohold.toml")]
    began = time.monotonic()
    done = subprocess.run([*cli, "build", "--cache-report", str(report)], env=env, capture_output=True, text=True,
                          check=False, timeout=1800)  # fmt: skip
    seconds = time.monotonic() - began
    subprocess.run([*cli, "engine", "stop"], env=env, capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        return {"seconds": round(seconds, 1), "error": done.stderr[-1500:]}
    records = json.loads(report.read_text())
    outcomes = {f"{r['service']}:{r['stage']}": r["outcome"] for r in records}
    return {"seconds": round(seconds, 1), "outcomes": outcomes}


def scenarios() -> dict[str, Callable[[Path], None]]:
    """Name → the change it makes to a repository copy (None for no change)."""

    def code(repo: Path) -> None:
        main_py = repo / "services/backend/app/main.py"
        main_py.write_text(main_py.read_text() + "\n# a code-only change\n")

    def dependency(repo: Path) -> None:
        lock = repo / "services/backend/requirements/app.lock"
        lock.write_text(lock.read_text() + "six==1.16.0\n")

    return {"no change": lambda _: None, "code-only change": code, "dependency change": dependency}


def main() -> int:
    """Run every scenario; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    namespace = f"bench-fresh-{uuid.uuid4().hex[:8]}"
    results: dict[str, dict[str, object]] = {}
    tmpdir = tempfile.TemporaryDirectory(prefix="cargohold-fresh-")
    with tmpdir as tmp, second_host("chbench", Path(tmp), slot=1) as host:
        work = Path(tmp)
        base = copy_repo(work / "base")
        results["cold (fresh engine, empty cache)"] = timed_build(
            base, fresh_env(host, namespace, work / "s0"), work / "r0.json"
        )
        for i, (name, change) in enumerate(scenarios().items(), start=1):
            repo = copy_repo(work / f"repo{i}")
            change(repo)
            env = fresh_env(host, namespace, work / f"s{i}", engine=name != "no change")
            results[f"fresh runner, {name}"] = timed_build(repo, env, work / f"r{i}.json")
    print("| scenario | wall time | what happened |\n|---|---|---|")
    for name, result in results.items():
        outcome = result.get("outcomes") or {"error": str(result.get("error", ""))[:200]}
        print(f"| {name} | {result['seconds']} s | {', '.join(f'{k} {v}' for k, v in outcome.items())} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
