// Calls to the backend, through the same-origin /api prefix that server.mjs
// (and `npm run dev`) proxy to BACKEND_URL with the prefix stripped.

export interface Health {
  status: string;
  model: string;
  database: string;
}

export interface PredictResponse {
  id: number;
  label: string;
  scores: number[];
  labels: string[];
}

export interface PredictionRecord {
  id: number;
  features: number[];
  label: string;
  scores: number[];
  model: string;
  created_at: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export const DEFAULT_BASE_URL = "/api";

/** Join a base URL ("/api", "/api/", "http://host/api") and a path ("/predict"). */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** A readable message from a FastAPI error body ({"detail": "..."} or a list of errors). */
export function errorMessage(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    const messages = detail
      .map((e: unknown) => {
        const { msg, loc } = (e ?? {}) as { msg?: unknown; loc?: unknown };
        if (typeof msg !== "string") return null;
        const where = Array.isArray(loc) ? loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${msg}` : msg;
      })
      .filter((m): m is string => m !== null);
    if (messages.length > 0) return messages.join("; ");
  }
  return `HTTP ${status}`;
}

export interface Api {
  health: () => Promise<Health>;
  predict: (features: number[]) => Promise<PredictResponse>;
  predictions: (limit?: number) => Promise<PredictionRecord[]>;
}

interface RequestOptions {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

export function createApi(baseUrl: string = DEFAULT_BASE_URL, fetchImpl: FetchLike = fetch): Api {
  async function request<T>(path: string, options: RequestOptions = {}, okStatuses: number[] = []): Promise<T> {
    const response = await fetchImpl(joinUrl(baseUrl, path), {
      ...options,
      headers: { accept: "application/json", ...options.headers },
    });
    let body: unknown = null;
    const text = await response.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!response.ok && !okStatuses.includes(response.status)) {
      throw new ApiError(response.status, errorMessage(response.status, body));
    }
    if (body === null) throw new ApiError(response.status, "the backend sent no JSON");
    return body as T;
  }

  return {
    // /health answers 503 with a full body when only the database is down.
    health: () => request<Health>("/health", {}, [503]),
    predict: (features) =>
      request<PredictResponse>("/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ features }),
      }),
    predictions: (limit = 10) =>
      request<PredictionRecord[]>(`/predictions?limit=${encodeURIComponent(limit)}`),
  };
}
