"""Issue 8 on the real engine: a run's trace reaches an OTLP collector, with Dagger's own spans in it.

cargohold's root span goes to the Dagger session as ``TRACEPARENT``, and the
SDK sends the current span with each query. A collector on loopback then
receives cargohold's spans, the SDK's and the engine's, all in one trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cargohold.config import Config
from cargohold.report import load_trace
from tests.integration.workspace import ROOT


def test_the_engines_spans_join_the_runs_trace_at_the_collector(config: Config, tmp_path: Path) -> None:
    probe = ROOT / "tests" / "integration" / "trace_link_probe.py"
    argv = [sys.executable, str(probe), str(config.images.python), str(tmp_path / "trace.json")]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    spans = seen["spans"]
    assert {"check probe", "probe"} <= set(spans.get("cargohold", [])), spans
    engine = [name for service, names in spans.items() if "dagger-engine" in service for name in names]
    assert "Container.from" in engine, f"wanted the engine's spans in trace {seen['trace_id']}, got {spans}"
    assert load_trace(tmp_path / "trace.json").root.name == "probe"  # and the file, all the same
