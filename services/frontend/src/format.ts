// Pure formatting helpers for what the page shows.

import type { Health } from "./api";

/** 0.97312 -> "97.3%"; tiny non-zero scores read "<0.1%" rather than "0.0%". */
export function formatScore(score: number): string {
  if (!Number.isFinite(score)) return "–";
  const pct = Math.min(Math.max(score, 0), 1) * 100;
  if (pct > 0 && pct < 0.05) return "<0.1%";
  return `${pct.toFixed(1)}%`;
}

export interface ScoreLine {
  label: string;
  score: number;
  text: string;
}

/** Pair labels with scores, highest first. */
export function rankScores(labels: readonly string[], scores: readonly number[]): ScoreLine[] {
  return labels
    .map((label, i) => ({ label, score: scores[i] ?? 0 }))
    .sort((a, b) => b.score - a.score || a.label.localeCompare(b.label))
    .map(({ label, score }) => ({ label, score, text: formatScore(score) }));
}

export function formatFeatures(features: readonly number[]): string {
  return features.map((f) => f.toFixed(1)).join(" · ");
}

/** An ISO timestamp as "YYYY-MM-DD HH:MM:SS" in UTC (stable, locale-free). */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace("T", " ").slice(0, 19);
}

export type Tone = "ok" | "warn" | "error";

export interface Badge {
  text: string;
  tone: Tone;
}

/** The health badge: from /api/health's body, or from the error that fetching it raised. */
export function healthBadge(health: Health | null, error?: unknown): Badge {
  if (health === null) {
    const reason = error instanceof Error ? error.message : "no answer";
    return { text: `backend unreachable (${reason})`, tone: "error" };
  }
  if (health.status === "ok" && health.database === "ok") {
    return { text: `healthy · model ${health.model}`, tone: "ok" };
  }
  return { text: `degraded · database ${health.database} · model ${health.model}`, tone: "warn" };
}
