"""Issue 9: the CI files (GitHub Actions, the GitLab example) call only what the command line has.

Every ``python pipelines.py …`` and ``./dev …`` in a ``run:`` or ``script:`` is
parsed by the real typer app (``typer.main.get_command``): an unknown command,
an unknown option or a missing required option fails here, as it would fail on
the CI runner. The structure is checked too: triggers, the plan → matrix →
aggregate wiring, permissions, and the Dagger version matching ``dagger.json``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from typer.core import TyperGroup

from cargohold.cli import app
from cargohold.errors import CargoholdError
from cargohold.results import parse_only

ROOT = Path(__file__).parents[2]
GITHUB = ROOT / ".github"
GITLAB = [ROOT / "examples" / "gitlab" / "gitlab-ci.yml", ROOT / "examples" / "gitlab" / "service-job.yml"]
CI_FILES = sorted(GITHUB.rglob("*.yml")) + GITLAB
ENGINE_VERSION = json.loads((ROOT / "dagger.json").read_text())["engineVersion"].removeprefix("v")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # a GitHub expression: one opaque word for the shell split
CALL = re.compile(r"(?:^|[;&|(]\s*|\s)(?:python3?\s+pipelines\.py|\./dev)\s+(.*)")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def scripts(node: object) -> Iterator[str]:
    """Every shell script in a workflow, action or GitLab file (run:, script:, before_script:)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"run", "script", "before_script", "after_script"}:
                yield from [value] if isinstance(value, str) else value
            else:
                yield from scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from scripts(item)


def invocations(script: str) -> list[list[str]]:
    """The argument lists of every cargohold call in a script (after the program name)."""
    text = EXPRESSION.sub("EXPR", script.replace("\\\n", " "))
    found = []
    for line in text.splitlines():
        if match := CALL.search(line):
            words = shlex.split(match.group(1), comments=True)
            cut = next((i for i, w in enumerate(words) if w in {">", ">>", "|", "&&", "||", ";", "2>&1"}), len(words))
            found.append(words[:cut])
    return found


def check_call(args: list[str]) -> None:
    """Parse ``args`` the way the CLI will: raises typer's usage error for a command or option it lacks."""
    command = typer.main.get_command(app)
    ctx = command.make_context("pipelines.py", list(args))  # the global options (--config, -v)
    while isinstance(command, TyperGroup):
        # The group keeps the command's name apart (typer's vendored click names it _protected_args).
        rest = [*getattr(ctx, "protected_args", getattr(ctx, "_protected_args", [])), *ctx.args]
        if not rest:
            raise typer.BadParameter(f"{args}: no command given")
        name, found, rest = command.resolve_command(ctx, rest)  # an unknown command raises here
        assert name is not None
        assert found is not None
        command, ctx = found, found.make_context(name, rest, parent=ctx)
    if ctx.args:
        raise typer.BadParameter(f"unexpected arguments {ctx.args}")
    if only := ctx.params.get("only"):
        parse_only(only)  # the task names are checked when the command runs; check them here too


ALL_CALLS = [(path, call) for path in CI_FILES for s in scripts(load(path)) for call in invocations(s)]


def test_the_ci_files_exist_and_call_cargohold() -> None:
    assert {p.name for p in CI_FILES} >= {"ci.yml", "release.yml", "action.yml", "gitlab-ci.yml", "service-job.yml"}
    called = {(p.name, c[0]) for p, c in ALL_CALLS}
    wanted = {("ci.yml", "plan"), ("ci.yml", "ci"), ("release.yml", "publish"), ("gitlab-ci.yml", "publish")}
    assert wanted | {("gitlab-ci.yml", "plan"), ("service-job.yml", "ci")} <= called, called


@pytest.mark.parametrize(("path", "call"), ALL_CALLS, ids=[f"{p.name}:{' '.join(c)}" for p, c in ALL_CALLS])
def test_every_call_names_a_command_and_options_the_cli_has(path: Path, call: list[str]) -> None:
    try:
        check_call(call)
    except (typer.TyperException, CargoholdError) as e:
        pytest.fail(f"{path.relative_to(ROOT)}: pipelines.py {' '.join(call)}: {e.format_message()}")


@pytest.mark.parametrize(
    "bad",
    [
        "python pipelines.py ci --service x --bogus",
        "python pipelines.py deploy",
        "./dev plan --matrix",
        "python pipelines.py publish --version 1.0.0",  # --to is required
        "python pipelines.py ci --only lint,tset",
        "python pipelines.py engine restart",
    ],
)
def test_the_check_fails_for_what_the_cli_lacks(bad: str) -> None:
    (call,) = invocations(bad)
    with pytest.raises((typer.TyperException, CargoholdError)):
        check_call(call)


def test_expressions_and_continuations_are_one_word_each() -> None:
    script = "python pipelines.py ci --service ${{ matrix.service }} \\\n  --only lint,test,build > out.txt"
    assert invocations(script) == [["ci", "--service", "EXPR", "--only", "lint,test,build"]]


def test_github_ci_wires_the_plan_matrix_into_per_service_jobs_and_one_aggregate() -> None:
    wf = load(GITHUB / "workflows" / "ci.yml")
    assert set(wf["on"]) == {"pull_request", "push"}
    assert wf["on"]["push"]["branches"] == ["main"]
    plan, service, aggregate = (wf["jobs"][name] for name in ("plan", "service", "ci"))
    step = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert ["plan", "--json"] in invocations(step["run"])
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert "matrix=$(jq -c .matrix plan.json)" in step["run"]  # the plan's own CI matrix, as is
    assert service["needs"] == "plan"
    assert service["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert service["strategy"]["fail-fast"] is False
    assert "needs.plan.outputs.builds != '0'" in service["if"]  # an empty matrix is a skipped job, not an error
    (per_service,) = [c for s in scripts(service) for c in invocations(s)]
    assert per_service[:3] == ["ci", "--service", "EXPR"]
    assert "${{ matrix.service }}" in next(s["run"] for s in service["steps"] if "pipelines.py" in s.get("run", ""))
    assert set(aggregate["needs"]) == {"plan", "service"}
    assert "!cancelled()" in aggregate["if"]  # runs (and can fail) even when the matrix was skipped
    assert [c[0] for s in scripts(aggregate) for c in invocations(s)] == ["ci"]
    assert wf["permissions"]["packages"] == "write"


def test_github_release_publishes_tags_to_ghcr_with_the_workflow_token() -> None:
    wf = load(GITHUB / "workflows" / "release.yml")
    assert wf["on"] == {"push": {"tags": ["v*"]}}
    assert wf["permissions"] == {"contents": "read", "packages": "write"}
    (job,) = wf["jobs"].values()
    step = next(s for s in job["steps"] if "publish" in s.get("run", ""))
    (call,) = invocations(step["run"])
    options = dict(zip(call[1::2], call[2::2], strict=False))
    assert options["--to"].startswith("ghcr.io/${GITHUB_REPOSITORY")
    assert options["--token"] == "env:GITHUB_TOKEN"
    assert options["--version"] == "${GITHUB_REF_NAME#v}"
    assert step["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"  # noqa: S105 - where it comes from
    runs = [c[0] for s in scripts(job) for c in invocations(s)]
    assert runs.index("ci") < runs.index("publish")  # publish promotes only what ci verified


def test_every_job_uses_the_shared_setup_and_the_pinned_dagger() -> None:
    setup = load(GITHUB / "actions" / "setup-cargohold" / "action.yml")
    install = next(s["run"] for s in setup["runs"]["steps"] if "install.sh" in s.get("run", ""))
    assert "https://dl.dagger.io/dagger/install.sh" in install
    assert f"DAGGER_VERSION={ENGINE_VERSION}" in install
    for name in ("ci.yml", "release.yml"):
        for job in load(GITHUB / "workflows" / name)["jobs"].values():
            uses = [s.get("uses") for s in job.get("steps", [])]
            if any("pipelines.py" in s for s in scripts(job)):
                assert "./.github/actions/setup-cargohold" in uses, name


def test_gitlab_reaches_its_engine_as_a_remote_engine_of_the_pinned_version() -> None:
    main, template = (load(p) for p in GITLAB)
    for node in (main[".cargohold"], template[".cargohold-service"]):
        assert node["variables"]["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] == "tcp://dagger-engine:1234"
        engine = next(s for s in node["services"] if s["alias"] == "dagger-engine")
        assert engine["name"] == f"registry.dagger.io/engine:v{ENGINE_VERSION}"
        assert engine["command"] == ["--addr", "tcp://0.0.0.0:1234"]
    assert main["services"]["trigger"]["include"][0] == {"artifact": "child-pipeline.yml", "job": "plan"}
    assert main["ci"]["needs"] == ["services"]
    assert any("examples/gitlab/service-job.yml" in line for line in main["plan"]["script"])


@pytest.mark.parametrize("services", [["backend", "frontend"], []])
def test_gitlab_turns_the_plan_matrix_into_a_child_pipeline_of_the_template(
    tmp_path: Path, services: list[str]
) -> None:
    main, template = (load(p) for p in GITLAB)
    plan = {"matrix": {"include": [{"service": s, "variant": "default"} for s in services]}, "reused": []}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    generator = next(line for line in main["plan"]["script"] if "child-pipeline.yml" in line)
    env = {"PATH": os.environ["PATH"], "CI_PROJECT_PATH": "acme/shop", "CI_COMMIT_SHA": "c0ffee"}
    subprocess.run(["bash", "-c", generator], cwd=tmp_path, env=env, check=True, timeout=60)
    child = load(tmp_path / "child-pipeline.yml")
    assert child.pop("include") == [
        {"project": "acme/shop", "ref": "c0ffee", "file": GITLAB[1].relative_to(ROOT).as_posix()}
    ]
    if services:
        assert {job["variables"]["SERVICE"] for job in child.values()} == set(services)
        assert {job["extends"] for job in child.values()} == {".cargohold-service"}
        assert ".cargohold-service" in template
    else:
        assert list(child) == ["nothing to build"]  # a child pipeline needs one job
