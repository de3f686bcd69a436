"""Run by test_trace_link: a traced run with one real Dagger session, exporting to a collector on loopback.

argv: the image to run, then where to write the trace file. The collector is
a tiny OTLP/HTTP receiver in this process; the probe prints, as JSON, the
run's trace id and, per ``service.name`` that sent spans, the names of the
spans that belong to that trace.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import anyio
from dagger import dag
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from cargohold import engine as engines
from cargohold import telemetry

BODIES: list[bytes] = []


class _Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        BODIES.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


async def _session(image: str) -> None:
    async with engines.session(engines.resolve(start=True)):
        with telemetry.span("check probe"):
            await dag.container().from_(image).with_exec(["true"]).sync()


def _spans_in(trace_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for body in BODIES:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            names = [a.value.string_value for a in resource.resource.attributes if a.key == "service.name"]
            spans = [s.name for scope in resource.scope_spans for s in scope.spans if s.trace_id.hex() == trace_id]
            found.setdefault(names[0] if names else "?", []).extend(spans)
    return found


def main() -> None:
    image, trace_file = sys.argv[1], Path(sys.argv[2])
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
    with telemetry.traced_run("probe", trace_file, {}) as tracing:
        trace_id = format(tracing.root.get_span_context().trace_id, "032x")
        anyio.run(_session, image)
    time.sleep(2)  # the session's exporters flush on close; give the last request time to land
    server.shutdown()
    server.server_close()
    print(json.dumps({"trace_id": trace_id, "spans": _spans_in(trace_id)}))


if __name__ == "__main__":
    main()
