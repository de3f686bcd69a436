"""python.bytecode: false leaves pip's .pyc files out of the runtime's packages, and counts in the stage keys."""

from __future__ import annotations

from pathlib import Path

from cargohold.config import Config, PythonConfig, load_config, parse_config
from cargohold.keys import base_digests, service_keys
from cargohold.source_tree import host_tree
from cargohold.stages_python import PythonStages

ROOT = Path(__file__).parents[2]


def _with_bytecode(config: Config, *, bytecode: bool) -> Config:
    data = config.model_dump(by_alias=True)
    data["services"]["backend"]["python"]["bytecode"] = bytecode
    return parse_config(data)


def _stage_keys(config: Config) -> dict[str, str]:
    svc = config.service("backend")
    tree = host_tree(ROOT / svc.path, svc.context)
    return service_keys(config, "backend", "cpu", tree=tree, bases=base_digests(config)).stages


def test_the_default_keeps_bytecode_and_the_backend_leaves_it_out() -> None:
    assert PythonConfig().bytecode is True
    assert load_config(ROOT / "cargohold.toml", environ={}).service("backend").python_settings.bytecode is False


def test_bytecode_changes_the_dependency_stages_keys() -> None:
    config = load_config(ROOT / "cargohold.toml", environ={})
    without, with_ = (
        _stage_keys(_with_bytecode(config, bytecode=False)),
        _stage_keys(_with_bytecode(config, bytecode=True)),
    )
    assert without["heavy"] != with_["heavy"]
    assert without["dependencies"] != with_["dependencies"]


def test_pip_gets_no_compile_only_when_bytecode_is_off() -> None:
    def flags(*, bytecode: bool) -> list[str]:
        stages = PythonStages(src=None, settings=PythonConfig(bytecode=bytecode), variant=None,  # type: ignore[arg-type]
                              builder_image="b", runtime_image="r")  # fmt: skip
        return stages._compile()  # noqa: SLF001 - the flag itself is what this checks

    assert flags(bytecode=False) == ["--no-compile"]
    assert flags(bytecode=True) == []
