"""Issue 10: bad inputs that get as far as the registry or the engine still end in exit 2 and one error line.

The engine-free catalogue (broken files, bad arguments, malformed versions,
unknown variants) is in ``tests/unit/test_config_catalogue.py``. These get
further: a base image that does not exist (the engine is asked for it), a
release of images ``ci`` never checked (the registry is asked), a service
without its lockfile. Each runs the real command line into empty namespaces,
which must still be empty afterwards: nothing half-built, nothing published.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
from pathlib import Path

from cargohold.bootstrap import BootstrapReport
from tests.integration.reliability_support import cli, direct, git_repo, scratch
from tests.integration.workspace import runner_env
from tests.reliability import record

MISSING = "127.0.0.1:5000/reliability-missing/node@sha256:" + "0" * 64


def test_bad_inputs_that_reach_the_registry_exit_2_and_publish_nothing(
    bootstrapped: BootstrapReport, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "repo")
    no_lock = git_repo(tmp_path / "no-lock")
    (no_lock / "services/frontend/package-lock.json").unlink()
    builds, release = scratch("rel-bad"), scratch("rel-bad-release")
    cases = {
        "a base image that does not exist": (repo, ["build", "--service", "frontend"],
                                             {"CARGOHOLD_IMAGE_NODE": MISSING}, "not found in its registry"),
        "a service without its lockfile": (no_lock, ["build", "--service", "frontend"], {}, "package-lock.json"),
        "a release of images ci never checked": (repo, ["publish", "--to", release, "--version", "1.0.0"], {},
                                                 "run './dev ci' first"),
    }  # fmt: skip

    def run(case: tuple[Path, list[str], dict[str, str], str]) -> subprocess.CompletedProcess[str]:
        where, argv, extra, _ = case
        return cli(where, runner_env(builds, **extra), *argv)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(cases, pool.map(run, cases.values()), strict=True))
    problems = []
    for name, result in done.items():
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        wanted = cases[name][3]
        if result.returncode != 2 or len(errors) != 1 or wanted not in errors[0] or "Traceback" in result.stderr:
            problems.append(f"{name}: wanted exit 2 and one error line with {wanted!r}, got {result.returncode} "
                            f"{result.stderr[-600:]}")  # fmt: skip
    assert not problems, "\n".join(problems)
    registry, _ = direct(builds)
    left = [r for r in registry.catalog() for ns in (builds, release) if r.startswith(direct(ns)[1] + "/")]
    assert left == [], f"a bad input left something in the registry: {left}"
    record("bad inputs", "bad inputs that reach the registry or the engine",
           "a base image that does not exist, a service without its lockfile, a release of unchecked images",
           "each: exit 2, one error line, no traceback; the namespaces stayed empty",
           bad_inputs=len(cases))  # fmt: skip
