// Input validation for the four measurements, mirroring the backend's rules
// (a finite number of centimetres, 0 to 100) so most mistakes never leave the page.

export const FEATURE_NAMES = [
  "Sepal length",
  "Sepal width",
  "Petal length",
  "Petal width",
] as const;

export const MIN_CM = 0;
export const MAX_CM = 100;

export type Validation = { ok: true; features: number[] } | { ok: false; errors: string[] };

/** Parse one raw input ("5,1" is accepted as 5.1); an error message or the number. */
export function parseFeature(name: string, raw: string): number | string {
  const text = raw.trim().replace(",", ".");
  if (text === "") return `${name} is required`;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return `${name} must be a number`;
  const value = Number(text);
  if (!Number.isFinite(value)) return `${name} must be a finite number`;
  if (value < MIN_CM || value > MAX_CM) return `${name} must be between ${MIN_CM} and ${MAX_CM} cm`;
  return value;
}

export function validateFeatures(raw: readonly string[]): Validation {
  if (raw.length !== FEATURE_NAMES.length) {
    return { ok: false, errors: [`expected ${FEATURE_NAMES.length} values, got ${raw.length}`] };
  }
  const features: number[] = [];
  const errors: string[] = [];
  FEATURE_NAMES.forEach((name, i) => {
    const parsed = parseFeature(name, raw[i] ?? "");
    if (typeof parsed === "string") errors.push(parsed);
    else features.push(parsed);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, features };
}
