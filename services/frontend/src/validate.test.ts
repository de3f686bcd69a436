import { describe, expect, it } from "vitest";
import { FEATURE_NAMES, parseFeature, validateFeatures } from "./validate";

describe("parseFeature", () => {
  it.each([
    ["5.1", 5.1],
    [" 3 ", 3],
    ["0", 0],
    ["100", 100],
    ["4,2", 4.2],
    [".5", 0.5],
    ["1e1", 10],
  ])("accepts %j", (raw, expected) => {
    expect(parseFeature("x", raw)).toBe(expected);
  });

  it.each([
    ["", "x is required"],
    ["   ", "x is required"],
    ["abc", "x must be a number"],
    ["5.1cm", "x must be a number"],
    ["0x10", "x must be a number"],
    ["Infinity", "x must be a number"],
    ["NaN", "x must be a number"],
    ["1e999", "x must be a finite number"],
    ["-1", "x must be between 0 and 100 cm"],
    ["100.5", "x must be between 0 and 100 cm"],
  ])("rejects %j", (raw, message) => {
    expect(parseFeature("x", raw)).toBe(message);
  });
});

describe("validateFeatures", () => {
  it("returns the four numbers when all are valid", () => {
    expect(validateFeatures(["5.1", "3.5", "1.4", "0.2"])).toEqual({
      ok: true,
      features: [5.1, 3.5, 1.4, 0.2],
    });
  });

  it("names every bad field", () => {
    const result = validateFeatures(["", "3.5", "x", "-2"]);
    expect(result).toEqual({
      ok: false,
      errors: [
        `${FEATURE_NAMES[0]} is required`,
        `${FEATURE_NAMES[2]} must be a number`,
        `${FEATURE_NAMES[3]} must be between 0 and 100 cm`,
      ],
    });
  });

  it("requires exactly four values", () => {
    expect(validateFeatures(["1", "2", "3"])).toEqual({
      ok: false,
      errors: ["expected 4 values, got 3"],
    });
  });
});
