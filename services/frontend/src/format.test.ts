import { describe, expect, it } from "vitest";
import { formatFeatures, formatScore, formatTime, healthBadge, rankScores } from "./format";

describe("formatScore", () => {
  it.each([
    [0.97312, "97.3%"],
    [1, "100.0%"],
    [0, "0.0%"],
    [0.0001, "<0.1%"],
    [0.0005, "0.1%"],
    [1.2, "100.0%"],
    [-0.1, "0.0%"],
    [Number.NaN, "–"],
  ])("%d -> %s", (score, text) => {
    expect(formatScore(score)).toBe(text);
  });
});

describe("rankScores", () => {
  it("pairs labels and scores, best first", () => {
    expect(rankScores(["setosa", "versicolor", "virginica"], [0.1, 0.7, 0.2])).toEqual([
      { label: "versicolor", score: 0.7, text: "70.0%" },
      { label: "virginica", score: 0.2, text: "20.0%" },
      { label: "setosa", score: 0.1, text: "10.0%" },
    ]);
  });

  it("treats a missing score as zero and breaks ties by label", () => {
    expect(rankScores(["b", "a", "c"], [0.5, 0.5]).map((l) => l.label)).toEqual(["a", "b", "c"]);
  });
});

describe("formatFeatures and formatTime", () => {
  it("formats measurements with one decimal", () => {
    expect(formatFeatures([5.1, 3, 1.45, 0.2])).toBe("5.1 · 3.0 · 1.4 · 0.2");
  });

  it("formats timestamps in UTC and leaves junk alone", () => {
    expect(formatTime("2026-11-23T16:29:17.217714Z")).toBe("2026-11-23 16:29:17");
    expect(formatTime("2026-11-23T17:29:17+01:00")).toBe("2026-11-23 16:29:17");
    expect(formatTime("not a date")).toBe("not a date");
  });
});

describe("healthBadge", () => {
  it("is ok when model and database are", () => {
    expect(healthBadge({ status: "ok", model: "43a46c094600", database: "ok" })).toEqual({
      text: "healthy · model 43a46c094600",
      tone: "ok",
    });
  });

  it("warns when the database is unavailable", () => {
    const badge = healthBadge({ status: "degraded", model: "abc", database: "unavailable" });
    expect(badge.tone).toBe("warn");
    expect(badge.text).toContain("database unavailable");
  });

  it("is an error when the backend cannot be reached", () => {
    expect(healthBadge(null, new Error("HTTP 502"))).toEqual({
      text: "backend unreachable (HTTP 502)",
      tone: "error",
    });
    expect(healthBadge(null).text).toBe("backend unreachable (no answer)");
  });
});
