// The runtime server's logic, with no dependency beyond Node's standard
// library: the runtime image holds only the node binary, server.mjs, this file
// and dist/. Pure helpers are exported for the unit tests, and so is
// createHandler(), which the tests drive over real HTTP.

import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";

/** @type {Readonly<Record<string, string>>} */
export const CONTENT_TYPES = Object.freeze({
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".wasm": "application/wasm",
});

/** The Content-Type for a file, by extension (case-insensitive). */
export function contentType(/** @type {string} */ filePath) {
  return CONTENT_TYPES[path.extname(filePath).toLowerCase()] ?? "application/octet-stream";
}

/**
 * Map a request path ("/assets/x.js?v=1") to a file under `root`, or null when
 * it is malformed or would leave `root` ("..", encoded or not, NUL bytes,
 * backslashes). `root` must be absolute.
 * @param {string} root
 * @param {string} urlPath
 * @returns {string | null}
 */
export function resolveSafePath(root, urlPath) {
  const pathname = urlPath.split(/[?#]/, 1)[0] ?? "";
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (!decoded.startsWith("/") || decoded.includes("\0") || decoded.includes("\\")) return null;
  const base = path.resolve(root);
  const resolved = path.resolve(base, `.${path.posix.normalize(decoded)}`);
  if (resolved !== base && !resolved.startsWith(base + path.sep)) return null;
  // Refuse any ".." segment even when it would stay inside root: no legitimate asset URL has one.
  if (decoded.split("/").includes("..")) return null;
  return resolved;
}

/** True for "/api" and "/api/…" (and "/api?…"), not for "/apix". */
export function isApiPath(/** @type {string} */ urlPath) {
  return /^\/api(?=$|[/?#])/.test(urlPath);
}

/** "/api/predict?x=1" -> "/predict?x=1"; "/api" -> "/". */
export function stripApiPrefix(/** @type {string} */ urlPath) {
  const rest = urlPath.replace(/^\/api/, "");
  return rest.startsWith("/") ? rest : `/${rest}`;
}

/**
 * The backend URL a proxied request goes to: BACKEND_URL's origin and path
 * prefix (if any) followed by the request path without "/api".
 * @param {string} backendUrl
 * @param {string} urlPath
 */
export function backendTarget(backendUrl, urlPath) {
  const base = new URL(backendUrl);
  const prefix = base.pathname.replace(/\/+$/, "");
  return new URL(prefix + stripApiPrefix(urlPath), base.origin);
}

// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/**
 * Copy headers minus hop-by-hop ones (and any named in Connection:).
 * @param {http.IncomingHttpHeaders} headers
 * @returns {http.OutgoingHttpHeaders}
 */
export function forwardHeaders(headers) {
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  /** @type {http.OutgoingHttpHeaders} */
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) out[name] = value;
  }
  return out;
}

/** Long caching for Vite's content-hashed assets, revalidation for the rest. */
export function cacheControl(/** @type {string} */ relativePath) {
  return relativePath.startsWith(`assets${path.sep}`) || relativePath.startsWith("assets/")
    ? "public, max-age=31536000, immutable"
    : "no-cache";
}

/**
 * @typedef {{ port: number, host: string, backendUrl: string, root: string, proxyTimeoutMs: number }} Config
 */

/**
 * Settings from the environment: PORT (8080), HOST (0.0.0.0), BACKEND_URL
 * (http://backend:8000), STATIC_DIR (dist/ next to the server).
 * @param {Record<string, string | undefined>} env
 * @param {string} here  the directory of server.mjs
 * @returns {Config}
 */
export function loadConfig(env, here) {
  const port = Number(env.PORT ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad PORT: ${env.PORT}`);
  const backendUrl = env.BACKEND_URL ?? "http://backend:8000";
  const parsed = new URL(backendUrl);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`BACKEND_URL must be http(s): ${backendUrl}`);
  }
  return {
    port,
    host: env.HOST ?? "0.0.0.0",
    backendUrl,
    root: path.resolve(here, env.STATIC_DIR ?? "dist"),
    proxyTimeoutMs: Number(env.PROXY_TIMEOUT_MS ?? "30000"),
  };
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 */
function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(data),
    "cache-control": "no-store",
  });
  res.end(data);
}

/**
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {Config} config
 */
function proxy(req, res, config) {
  const target = backendTarget(config.backendUrl, req.url ?? "/");
  const headers = forwardHeaders(req.headers);
  const client = req.socket.remoteAddress ?? "";
  const prior = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = prior ? `${String(prior)}, ${client}` : client;
  headers["x-forwarded-host"] = req.headers.host ?? "";
  headers["x-forwarded-proto"] = "http";
  const transport = target.protocol === "https:" ? https : http;
  const upstream = transport.request(
    target,
    { method: req.method ?? "GET", headers, timeout: config.proxyTimeoutMs },
    (backendRes) => {
      res.writeHead(backendRes.statusCode ?? 502, forwardHeaders(backendRes.headers));
      backendRes.pipe(res);
    },
  );
  upstream.on("timeout", () => {
    upstream.destroy(new Error("backend timed out"));
  });
  upstream.on("error", (err) => {
    if (!res.headersSent) {
      const timedOut = err.message === "backend timed out";
      sendJson(res, timedOut ? 504 : 502, {
        detail: timedOut ? "backend timed out" : "backend unavailable",
      });
    } else {
      res.destroy(err);
    }
  });
  req.pipe(upstream);
}

/**
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {string} file
 * @param {string} root
 */
function sendFile(req, res, file, root) {
  const stat = fs.statSync(file);
  res.writeHead(200, {
    "content-type": contentType(file),
    "content-length": stat.size,
    "cache-control": cacheControl(path.relative(root, file)),
    "x-content-type-options": "nosniff",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  fs.createReadStream(file)
    .on("error", (err) => res.destroy(err))
    .pipe(res);
}

/** @param {string} file */
function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The request handler: GET /health, /api/* proxied to the backend, and the
 * static files of `config.root` with index.html as the fallback for page routes.
 * @param {Config} config
 * @returns {http.RequestListener}
 */
export function createHandler(config) {
  const index = path.join(config.root, "index.html");
  return (req, res) => {
    const url = req.url ?? "/";
    if (isApiPath(url)) {
      proxy(req, res, config);
      return;
    }
    if (url === "/health" || url.startsWith("/health?")) {
      sendJson(res, 200, { status: "ok" });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      sendJson(res, 405, { detail: "method not allowed" });
      return;
    }
    const file = resolveSafePath(config.root, url);
    if (file === null) {
      sendJson(res, 400, { detail: "bad path" });
      return;
    }
    if (isFile(file)) {
      sendFile(req, res, file, config.root);
      return;
    }
    // A missing file with an extension is a missing asset: 404. Anything else
    // is a page route of the single-page app: index.html.
    if (path.extname(file) === "" && isFile(index)) {
      sendFile(req, res, index, config.root);
      return;
    }
    sendJson(res, 404, { detail: "not found" });
  };
}
