import { describe, expect, it, vi } from "vitest";
import { ApiError, createApi, errorMessage, joinUrl, type FetchLike } from "./api";

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function fakeFetch(status: number, body: unknown) {
  return vi.fn<FetchLike>(() => Promise.resolve(jsonResponse(status, body)));
}

describe("joinUrl", () => {
  it.each([
    ["/api", "/predict", "/api/predict"],
    ["/api/", "/predict", "/api/predict"],
    ["/api//", "predict", "/api/predict"],
    ["http://localhost:8000", "/health", "http://localhost:8000/health"],
  ])("%s + %s", (base, path, expected) => {
    expect(joinUrl(base, path)).toBe(expected);
  });
});

describe("errorMessage", () => {
  it("uses a string detail", () => {
    expect(errorMessage(503, { detail: "database unavailable" })).toBe("database unavailable");
  });

  it("joins FastAPI validation errors with their field", () => {
    const body = {
      detail: [
        { loc: ["body", "features"], msg: "List should have at least 4 items", type: "too_short" },
        { loc: ["body", "features", 3], msg: "Input should be a finite number" },
      ],
    };
    expect(errorMessage(422, body)).toBe(
      "features: List should have at least 4 items; features.3: Input should be a finite number",
    );
  });

  it("falls back to the status", () => {
    expect(errorMessage(500, null)).toBe("HTTP 500");
    expect(errorMessage(500, { detail: [{}] })).toBe("HTTP 500");
  });
});

describe("createApi", () => {
  it("POSTs features to <base>/predict as JSON", async () => {
    const fetchImpl = fakeFetch(200, { id: 7, label: "setosa", scores: [1, 0, 0], labels: ["a", "b", "c"] });
    const api = createApi("/api", fetchImpl);
    await expect(api.predict([5.1, 3.5, 1.4, 0.2])).resolves.toMatchObject({ id: 7, label: "setosa" });
    const [url, init] = fetchImpl.mock.calls[0] ?? [];
    expect(url).toBe("/api/predict");
    expect(init?.method).toBe("POST");
    expect(init?.headers).toMatchObject({ "content-type": "application/json", accept: "application/json" });
    expect(JSON.parse(init?.body as string)).toEqual({ features: [5.1, 3.5, 1.4, 0.2] });
  });

  it("GETs recent predictions with a limit", async () => {
    const fetchImpl = fakeFetch(200, []);
    await expect(createApi("/api/", fetchImpl).predictions(5)).resolves.toEqual([]);
    expect(fetchImpl.mock.calls[0]?.[0]).toBe("/api/predictions?limit=5");
  });

  it("returns the health body on 503 (database down) too", async () => {
    const body = { status: "degraded", model: "abc", database: "unavailable" };
    await expect(createApi("/api", fakeFetch(503, body)).health()).resolves.toEqual(body);
  });

  it("throws ApiError with the backend's message", async () => {
    const api = createApi("/api", fakeFetch(422, { detail: [{ loc: ["body", "features"], msg: "bad" }] }));
    const error: unknown = await api.predict([1]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, message: "features: bad" });
  });

  it("throws on a non-JSON answer (e.g. a proxy's HTML error page)", async () => {
    const fetchImpl = vi.fn<FetchLike>(() =>
      Promise.resolve(new Response("<html>bad gateway</html>", { status: 502 })),
    );
    await expect(createApi("/api", fetchImpl).health()).rejects.toMatchObject({
      status: 502,
      message: "HTTP 502",
    });
    const ok = vi.fn<FetchLike>(() => Promise.resolve(new Response("", { status: 200 })));
    await expect(createApi("/api", ok).predictions()).rejects.toThrow("no JSON");
  });
});
