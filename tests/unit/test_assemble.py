"""The runtime image assembled from stage entries: its config and manifest (pure, no registry)."""

from __future__ import annotations

import json
from typing import Any

from cargohold.assemble import RuntimeSpec, image_config, manifest
from cargohold.registry import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, sha256_digest

SPEC = RuntimeSpec(
    layers=(("heavy", "/opt/heavy"), ("dependencies", "/opt/venv"), ("app", "/app")),
    env=(("PATH", "/opt/venv/bin:/usr/bin:/bin"), ("MODEL_PATH", "/opt/model/model.pt")),
    workdir="/app",
    user="10001:10001",
    labels={"org.opencontainers.image.title": "backend"},
    port=8000,
    entrypoint=("uvicorn", "app.main:app"),
    healthcheck=("python", "-c", "print(1)"),
)
BASE: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
        "Cmd": ["python3"],
        "Labels": {"org.opencontainers.image.base.name": "debian:bookworm"},
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:base", "sha256:user"]},
    "history": [{"created_by": "debootstrap"}, {"created_by": "ENV", "empty_layer": True}, {"created_by": "useradd"}],
}
DIFF_IDS = ["sha256:base", "sha256:user", "sha256:heavy", "sha256:deps", "sha256:app"]


def test_the_spec_overrides_the_base_env_in_place_and_appends_new_keys() -> None:
    config = image_config(BASE, SPEC, DIFF_IDS, "2026-11-23T00:00:00Z")["config"]
    assert config["Env"] == ["PATH=/opt/venv/bin:/usr/bin:/bin", "LANG=C.UTF-8", "MODEL_PATH=/opt/model/model.pt"]


def test_the_config_runs_the_service_as_non_root_with_its_health_check() -> None:
    config = image_config(BASE, SPEC, DIFF_IDS, "2026-11-23T00:00:00Z")
    settings = config["config"]
    assert settings["User"] == "10001:10001"
    assert settings["WorkingDir"] == "/app"
    assert settings["Entrypoint"] == ["uvicorn", "app.main:app"]
    assert "Cmd" not in settings, "a new entrypoint drops the base's default arguments"
    assert settings["ExposedPorts"] == {"8000/tcp": {}}
    assert settings["Healthcheck"]["Test"] == ["CMD", "python", "-c", "print(1)"]
    assert settings["Healthcheck"]["Interval"] == 10_000_000_000
    assert settings["Labels"] == {
        "org.opencontainers.image.base.name": "debian:bookworm",
        "org.opencontainers.image.title": "backend",
    }
    assert config["rootfs"] == {"type": "layers", "diff_ids": DIFF_IDS}
    assert BASE["config"]["Cmd"] == ["python3"], "the base's config is not changed in place"


def test_history_gets_one_entry_per_stage_layer_when_the_base_history_lines_up() -> None:
    history = image_config(BASE, SPEC, DIFF_IDS, "t")["history"]
    assert [h["created_by"] for h in history[3:]] == [
        "cargohold: heavy at /opt/heavy",
        "cargohold: dependencies at /opt/venv",
        "cargohold: app at /app",
    ]
    assert len([h for h in history if not h.get("empty_layer")]) == len(DIFF_IDS)


def test_history_is_left_out_when_the_base_history_does_not_match_its_layers() -> None:
    base = {**BASE, "history": [{"created_by": "one entry for two layers"}]}
    assert "history" not in image_config(base, SPEC, DIFF_IDS, "t")


def test_the_manifest_names_the_config_by_digest_and_keeps_only_descriptor_fields() -> None:
    config = json.dumps(image_config(BASE, SPEC, DIFF_IDS, "t")).encode()
    layers = [
        {"mediaType": OCI_LAYER_GZIP, "digest": f"sha256:{n}", "size": n, "annotations": {"x": "y"}} for n in (1, 2)
    ]
    doc = json.loads(manifest(config, layers))
    assert doc["mediaType"] == OCI_MANIFEST
    assert doc["config"] == {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)}
    assert doc["layers"] == [{"mediaType": OCI_LAYER_GZIP, "digest": f"sha256:{n}", "size": n} for n in (1, 2)]
