import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  backendTarget,
  cacheControl,
  contentType,
  createHandler,
  forwardHeaders,
  isApiPath,
  loadConfig,
  resolveSafePath,
  stripApiPrefix,
} from "../server-lib.mjs";

describe("contentType", () => {
  it.each([
    ["index.html", "text/html; charset=utf-8"],
    ["assets/index-abc123.js", "text/javascript; charset=utf-8"],
    ["assets/index-abc123.CSS", "text/css; charset=utf-8"],
    ["favicon.svg", "image/svg+xml"],
    ["font.woff2", "font/woff2"],
    ["data.json", "application/json; charset=utf-8"],
    ["mystery.bin", "application/octet-stream"],
    ["no-extension", "application/octet-stream"],
  ])("%s -> %s", (file, type) => {
    expect(contentType(file)).toBe(type);
  });
});

describe("resolveSafePath", () => {
  const root = path.resolve("/srv/dist");
  it.each([
    ["/", root],
    ["/index.html", path.join(root, "index.html")],
    ["/assets/app.js?v=3#x", path.join(root, "assets/app.js")],
    ["/a%20b.txt", path.join(root, "a b.txt")],
    ["/assets//x.js", path.join(root, "assets/x.js")],
  ])("%s stays in root", (url, expected) => {
    expect(resolveSafePath(root, url)).toBe(expected);
  });

  it.each([
    "/../etc/passwd",
    "/assets/../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E%2Fetc%2Fpasswd",
    "/assets/..%2f..%2fsecret",
    "/..%5c..%5cwindows",
    "/x%00.html",
    "/%E0%A4%A",
    "relative/path",
    "/assets/../index.html",
  ])("%s is refused", (url) => {
    expect(resolveSafePath(root, url)).toBeNull();
  });
});

describe("api paths", () => {
  it.each([
    ["/api", true],
    ["/api/", true],
    ["/api/predict", true],
    ["/api?x=1", true],
    ["/apix", false],
    ["/", false],
    ["/health", false],
  ])("isApiPath(%s) = %s", (url, expected) => {
    expect(isApiPath(url)).toBe(expected);
  });

  it.each([
    ["/api", "/"],
    ["/api/", "/"],
    ["/api/predict", "/predict"],
    ["/api/predictions?limit=5", "/predictions?limit=5"],
    ["/api?x=1", "/?x=1"],
  ])("stripApiPrefix(%s) = %s", (url, expected) => {
    expect(stripApiPrefix(url)).toBe(expected);
  });

  it("targets BACKEND_URL, keeping its path prefix", () => {
    expect(backendTarget("http://backend:8000", "/api/health").href).toBe("http://backend:8000/health");
    expect(backendTarget("http://backend:8000/", "/api/predictions?limit=2").href).toBe(
      "http://backend:8000/predictions?limit=2",
    );
    expect(backendTarget("https://x.example/v1/", "/api/predict").href).toBe("https://x.example/v1/predict");
  });
});

describe("headers, caching and config", () => {
  it("drops hop-by-hop headers and those named in Connection", () => {
    expect(
      forwardHeaders({
        host: "front",
        connection: "keep-alive, x-secret",
        "keep-alive": "timeout=5",
        "x-secret": "1",
        "transfer-encoding": "chunked",
        "content-type": "application/json",
        accept: "*/*",
      }),
    ).toEqual({ "content-type": "application/json", accept: "*/*" });
  });

  it("caches hashed assets forever and nothing else", () => {
    expect(cacheControl("assets/index-abc.js")).toBe("public, max-age=31536000, immutable");
    expect(cacheControl("index.html")).toBe("no-cache");
  });

  it("reads the environment with defaults", () => {
    expect(loadConfig({}, "/srv")).toEqual({
      port: 8080,
      host: "0.0.0.0",
      backendUrl: "http://backend:8000",
      root: path.resolve("/srv/dist"),
      proxyTimeoutMs: 30000,
    });
    const custom = loadConfig({ PORT: "18080", BACKEND_URL: "http://127.0.0.1:8000" }, "/srv");
    expect(custom).toMatchObject({ port: 18080, backendUrl: "http://127.0.0.1:8000" });
    expect(() => loadConfig({ PORT: "http" }, "/srv")).toThrow("bad PORT");
    expect(() => loadConfig({ BACKEND_URL: "ftp://x" }, "/srv")).toThrow("http(s)");
  });
});

// The handler over real HTTP on loopback, with a stub backend.
describe("createHandler", () => {
  let dir: string;
  let backend: http.Server;
  let front: http.Server;
  let frontPort: number;
  const seen: { method: string | undefined; url: string | undefined; body: string; headers: http.IncomingHttpHeaders }[] =
    [];

  function listen(server: http.Server): Promise<number> {
    return new Promise((resolve) => {
      server.listen(0, "127.0.0.1", () => {
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  function request(
    urlPath: string,
    options: { method?: string; body?: string; headers?: http.OutgoingHttpHeaders } = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: frontPort, path: urlPath, method: options.method ?? "GET", headers: options.headers },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (data += chunk));
          res.on("end", () => {
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data });
          });
        },
      );
      req.on("error", reject);
      req.end(options.body);
    });
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "frontend-dist-"));
    fs.mkdirSync(path.join(dir, "dist", "assets"), { recursive: true });
    fs.writeFileSync(path.join(dir, "dist", "index.html"), "<!doctype html><title>app</title>");
    fs.writeFileSync(path.join(dir, "dist", "assets", "app-1234.js"), "console.log(1)");
    fs.writeFileSync(path.join(dir, "secret.txt"), "do not serve");

    backend = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, body, headers: req.headers });
        res.writeHead(req.url === "/missing" ? 404 : 200, { "content-type": "application/json" });
        res.end(JSON.stringify({ path: req.url, method: req.method }));
      });
    });
    const backendPort = await listen(backend);
    const config = loadConfig({ BACKEND_URL: `http://127.0.0.1:${backendPort}`, STATIC_DIR: "dist" }, dir);
    front = http.createServer(createHandler(config));
    frontPort = await listen(front);
  });

  afterAll(() => {
    front.close();
    backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers /health itself", async () => {
    const res = await request("/health");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
  });

  it("serves files with their content type and caching", async () => {
    const index = await request("/");
    expect(index.status).toBe(200);
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.headers["cache-control"]).toBe("no-cache");
    const asset = await request("/assets/app-1234.js");
    expect(asset.body).toBe("console.log(1)");
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toContain("immutable");
    const head = await request("/assets/app-1234.js", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
  });

  it("falls back to index.html for page routes but 404s missing assets", async () => {
    const page = await request("/some/page");
    expect(page.status).toBe(200);
    expect(page.body).toContain("<title>app</title>");
    expect((await request("/assets/missing.js")).status).toBe(404);
  });

  it("never serves files outside dist/", async () => {
    for (const url of ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"]) {
      const res = await request(url);
      expect(res.status, url).toBe(400);
      expect(res.body).not.toContain("do not serve");
    }
  });

  it("refuses to write static files", async () => {
    const res = await request("/index.html", { method: "POST", body: "x" });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
  });

  it("proxies /api/* to the backend without the prefix, body and status included", async () => {
    const res = await request("/api/predict?x=1", {
      method: "POST",
      body: '{"features":[1,2,3,4]}',
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ path: "/predict?x=1", method: "POST" });
    const last = seen.at(-1);
    expect(last?.body).toBe('{"features":[1,2,3,4]}');
    expect(last?.headers["content-type"]).toBe("application/json");
    expect(last?.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect((await request("/api/missing")).status).toBe(404);
    expect(JSON.parse((await request("/api")).body)).toMatchObject({ path: "/" });
  });

  it("answers 502 when the backend is down", async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const handler = createHandler(loadConfig({ BACKEND_URL: `http://127.0.0.1:${port}` }, dir));
    const server = http.createServer(handler);
    const saved = frontPort;
    frontPort = await listen(server);
    try {
      const res = await request("/api/health");
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toEqual({ detail: "backend unavailable" });
    } finally {
      server.close();
      frontPort = saved;
    }
  });
});
