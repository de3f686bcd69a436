#!/usr/bin/env node
// The frontend's runtime: serves dist/, answers GET /health, and proxies
// /api/* to BACKEND_URL with the /api prefix stripped. Standard library only,
// so the runtime image needs the node binary and these files, nothing else:
//   server.mjs  server-lib.mjs  dist/
// Environment: PORT (8080), HOST (0.0.0.0), BACKEND_URL (http://backend:8000),
// STATIC_DIR (dist), PROXY_TIMEOUT_MS (30000).

import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHandler, loadConfig } from "./server-lib.mjs";

const config = loadConfig(process.env, path.dirname(fileURLToPath(import.meta.url)));
const server = http.createServer(createHandler(config));
server.keepAliveTimeout = 65_000;

server.listen(config.port, config.host, () => {
  console.log(
    `frontend: serving ${config.root} on http://${config.host}:${config.port}, /api -> ${config.backendUrl}`,
  );
});

// As PID 1 in a container, node gets no default signal handling: stop cleanly.
for (const signal of /** @type {const} */ (["SIGTERM", "SIGINT"])) {
  process.on(signal, () => {
    console.log(`frontend: ${signal}, closing`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  });
}
