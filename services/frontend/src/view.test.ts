// @vitest-environment happy-dom
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Api, PredictionRecord } from "./api";
import { mount } from "./view";
import html from "../index.html?raw";

const body = /<body>([\s\S]*)<\/body>/.exec(html)?.[1] ?? "";

function record(id: number, label: string): PredictionRecord {
  return {
    id,
    label,
    features: [5.1, 3.5, 1.4, 0.2],
    scores: [0.9, 0.05, 0.05],
    model: "f".repeat(64),
    created_at: "2026-11-23T16:29:17Z",
  };
}

function fakeApi(): Api & { stored: PredictionRecord[] } {
  const stored: PredictionRecord[] = [];
  return {
    stored,
    health: vi.fn(() => Promise.resolve({ status: "ok", model: "43a46c094600", database: "ok" })),
    predictions: vi.fn(() => Promise.resolve([...stored].reverse())),
    predict: vi.fn((features: number[]) => {
      const row = { ...record(stored.length + 1, "setosa"), features };
      stored.push(row);
      return Promise.resolve({
        id: row.id,
        label: "setosa",
        scores: [0.9, 0.06, 0.04],
        labels: ["setosa", "versicolor", "virginica"],
      });
    }),
  };
}

const $ = (selector: string) => document.querySelector<HTMLElement>(selector);

describe("the page", () => {
  beforeEach(() => {
    document.body.innerHTML = body.replace(/<script[\s\S]*?<\/script>/g, "");
  });

  it("shows health and the (empty) list on load", async () => {
    const api = fakeApi();
    const page = mount(document, api);
    await Promise.all([page.refreshHealth(), page.refreshPredictions()]);
    expect($("#health")?.textContent).toBe("healthy · model 43a46c094600");
    expect($("#health")?.dataset.tone).toBe("ok");
    expect($("#predictions")?.textContent).toBe("No predictions yet.");
  });

  it("predicts, shows label and scores, then refreshes the list", async () => {
    const api = fakeApi();
    const page = mount(document, api);
    await page.submit();
    expect(api.predict).toHaveBeenCalledWith([5.1, 3.5, 1.4, 0.2]);
    expect($("#result .label")?.textContent).toBe("setosa");
    const lines = [...document.querySelectorAll("#result .scores li")].map((li) => li.textContent);
    expect(lines).toEqual(["setosa90.0%", "versicolor6.0%", "virginica4.0%"]);
    const items = document.querySelectorAll<HTMLElement>("#predictions li");
    expect(items).toHaveLength(1);
    expect(items[0]?.dataset.id).toBe("1");
    expect(items[0]?.textContent).toContain("setosa (90.0%)");
  });

  it("does not call the backend with invalid input, and marks the field", async () => {
    const api = fakeApi();
    const page = mount(document, api);
    const input = document.querySelector<HTMLInputElement>('input[name="f2"]');
    if (input) input.value = "abc";
    await page.submit();
    expect(api.predict).not.toHaveBeenCalled();
    expect($("#result")?.textContent).toBe("Petal length must be a number");
    expect(input?.getAttribute("aria-invalid")).toBe("true");
  });

  it("shows backend errors and an unreachable badge", async () => {
    const api = fakeApi();
    api.predict = vi.fn(() => Promise.reject(new Error("database unavailable")));
    api.health = vi.fn(() => Promise.reject(new Error("HTTP 502")));
    const page = mount(document, api);
    await page.submit();
    expect($("#result")?.textContent).toBe("database unavailable");
    expect($("#health")?.dataset.tone).toBe("error");
    expect(($("#predict-form button") as HTMLButtonElement).disabled).toBe(false);
  });

  it("renders backend text as text, not HTML", async () => {
    const api = fakeApi();
    api.stored.push(record(1, "<img src=x onerror=alert(1)>"));
    await mount(document, api).refreshPredictions();
    expect(document.querySelector("#predictions img")).toBeNull();
    expect($("#predictions")?.textContent).toContain("<img src=x onerror=alert(1)>");
  });
});
