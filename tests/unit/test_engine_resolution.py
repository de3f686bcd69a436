"""Engine resolution order, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold import engine
from cargohold.errors import EngineError


def test_a_runner_host_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", "tcp://10.0.0.7:1234")
    found = engine.resolve(start=False)
    assert found.kind is engine.EngineKind.REMOTE
    assert found.client_env()["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] == "tcp://10.0.0.7:1234"
    assert found.client_env()["DO_NOT_TRACK"] == "1"


def test_engine_dir_must_hold_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", raising=False)
    monkeypatch.setenv("CARGOHOLD_ENGINE_DIR", str(tmp_path))
    with pytest.raises(EngineError, match="has no dagger-engine binary"):
        engine.resolve(start=False)


def test_no_engine_names_all_three_routes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", raising=False)
    monkeypatch.setenv("CARGOHOLD_ENGINE_DIR", "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError) as caught:
        engine.resolve(start=False)
    line = caught.value.one_line()
    assert "_EXPERIMENTAL_DAGGER_RUNNER_HOST" in line
    assert "native engine" in line
    assert "Docker" in line


def test_export_writes_the_client_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARGOHOLD_CACHE_DIR", str(tmp_path))
    found = engine.Engine(engine.EngineKind.REMOTE, "test", runner_host="unix:///x.sock", cli_bin="/bin/dagger")
    environ: dict[str, str] = {}
    path = found.export(environ)
    assert environ["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] == "unix:///x.sock"
    text = path.read_text()
    assert "export _EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///x.sock\n" in text
    assert "export _EXPERIMENTAL_DAGGER_CLI_BIN=/bin/dagger\n" in text
    assert "export DAGGER_NO_UPDATE_CHECK=1\n" in text


def test_a_native_engine_exported_by_cargohold_is_not_taken_for_a_remote_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CARGOHOLD_CACHE_DIR", str(tmp_path))
    ours = engine.Engine(engine.EngineKind.NATIVE, "ours", runner_host="unix:///ours.sock", cli_bin="/bin/dagger")
    for name, value in ours.client_env().items():
        monkeypatch.setenv(name, value)  # what export() does, undone after the test
    monkeypatch.setenv("CARGOHOLD_ENGINE_DIR", "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError):  # the native route is off here, so nothing else is left
        engine.resolve(start=False)
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", "tcp://elsewhere:1234")
    assert engine.resolve(start=False).kind is engine.EngineKind.REMOTE
