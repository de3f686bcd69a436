// The page: renders into the elements of index.html and wires the form.
// DOM access is kept here; the decisions live in api.ts, validate.ts, format.ts.
// Text from the backend is always set with textContent, never as HTML.

import type { Api, PredictResponse, PredictionRecord } from "./api";
import { type Badge, formatFeatures, formatTime, healthBadge, rankScores } from "./format";
import { FEATURE_NAMES, validateFeatures } from "./validate";

const RECENT_LIMIT = 10;

function element(doc: Document, selector: string): HTMLElement {
  const found = doc.querySelector<HTMLElement>(selector);
  if (!found) throw new Error(`missing element ${selector}`);
  return found;
}

function make(doc: Document, tag: string, text?: string, className?: string): HTMLElement {
  const el = doc.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className !== undefined) el.className = className;
  return el;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function renderBadge(el: HTMLElement, badge: Badge): void {
  el.textContent = badge.text;
  el.dataset.tone = badge.tone;
}

export function renderResult(el: HTMLElement, result: PredictResponse): void {
  const doc = el.ownerDocument;
  const scores = make(doc, "ul", undefined, "scores");
  for (const line of rankScores(result.labels, result.scores)) {
    const li = make(doc, "li");
    const bar = make(doc, "span", undefined, "bar");
    bar.style.width = `${(line.score * 100).toFixed(1)}%`;
    li.append(make(doc, "span", line.label), make(doc, "span", line.text), bar);
    scores.append(li);
  }
  el.replaceChildren(make(doc, "div", result.label, "label"), scores);
}

export function renderErrors(el: HTMLElement, errors: readonly string[]): void {
  const doc = el.ownerDocument;
  const list = make(doc, "ul", undefined, "errors");
  list.setAttribute("role", "alert");
  for (const message of errors) list.append(make(doc, "li", message));
  el.replaceChildren(list);
}

export function renderPredictions(el: HTMLElement, rows: readonly PredictionRecord[]): void {
  const doc = el.ownerDocument;
  if (rows.length === 0) {
    el.replaceChildren(make(doc, "li", "No predictions yet.", "muted"));
    return;
  }
  el.replaceChildren(
    ...rows.map((row) => {
      const li = make(doc, "li");
      const best = Math.max(...row.scores);
      li.append(
        make(doc, "strong", row.label),
        ` (${rankScores([row.label], [best])[0]?.text ?? ""}) `,
        make(doc, "span", `${formatFeatures(row.features)} · ${formatTime(row.created_at)}`, "muted"),
      );
      li.dataset.id = String(row.id);
      return li;
    }),
  );
}

export interface Page {
  refreshHealth: () => Promise<void>;
  refreshPredictions: () => Promise<void>;
  submit: () => Promise<void>;
}

/** Wire the page in `doc` to `api`; refreshes health and the list at once. */
export function mount(doc: Document, api: Api): Page {
  const form = element(doc, "#predict-form") as HTMLFormElement;
  const button = element(doc, "#predict-form button") as HTMLButtonElement;
  const result = element(doc, "#result");
  const list = element(doc, "#predictions");
  const badge = element(doc, "#health");
  const inputs = FEATURE_NAMES.map((_, i) => element(doc, `input[name="f${i}"]`) as HTMLInputElement);

  async function refreshHealth(): Promise<void> {
    try {
      renderBadge(badge, healthBadge(await api.health()));
    } catch (error) {
      renderBadge(badge, healthBadge(null, error));
    }
  }

  async function refreshPredictions(): Promise<void> {
    try {
      renderPredictions(list, await api.predictions(RECENT_LIMIT));
    } catch (error) {
      list.replaceChildren(make(doc, "li", `Could not load predictions: ${errorText(error)}`, "muted"));
    }
  }

  async function submit(): Promise<void> {
    const validation = validateFeatures(inputs.map((input) => input.value));
    inputs.forEach((input, i) => {
      const name = FEATURE_NAMES[i] ?? "";
      const invalid = !validation.ok && validation.errors.some((e) => e.startsWith(name));
      input.setAttribute("aria-invalid", String(invalid));
    });
    if (!validation.ok) {
      renderErrors(result, validation.errors);
      return;
    }
    button.disabled = true;
    try {
      renderResult(result, await api.predict(validation.features));
    } catch (error) {
      renderErrors(result, [errorText(error)]);
    } finally {
      button.disabled = false;
    }
    await Promise.all([refreshPredictions(), refreshHealth()]);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submit();
  });
  void Promise.all([refreshHealth(), refreshPredictions()]);
  return { refreshHealth, refreshPredictions, submit };
}
