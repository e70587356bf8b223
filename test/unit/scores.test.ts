/**
 * Scoring arithmetic (src/services/scores.ts) against values worked out by hand:
 * normalisation by sums, the 0.35/0.30/0.25/0.10 weighting, fiber's u16 scaling with
 * Python's round-half-even, dropping miners off the metagraph, and the window.
 */
import { describe, expect, it } from "vitest";
import { roundHalfEven, scoreMiners, scoringWindow, weightVector } from "../../src/services/scores.ts";

const miners = [
  { minerHotkey: "A", compute_units: 60, invocation_count: 6, unique_chute_count: 2, bounty_count: 1 },
  { minerHotkey: "B", compute_units: 30, invocation_count: 3, unique_chute_count: 1, bounty_count: 1 },
  { minerHotkey: "C", compute_units: 10, invocation_count: 1, unique_chute_count: 1, bounty_count: 0 },
];

describe("scoring", () => {
  it("normalises each feature by its sum and weighs 0.35 / 0.30 / 0.25 / 0.10", () => {
    const scored = scoreMiners(miners);
    // A: 0.35·60/100 + 0.30·6/10 + 0.25·2/4 + 0.10·1/2 = 0.21 + 0.18 + 0.125 + 0.05
    expect(scored.map((m) => m.score)).toEqual([
      expect.closeTo(0.565, 12),
      expect.closeTo(0.3075, 12),
      expect.closeTo(0.1275, 12),
    ]);
    expect(scored[1]?.normalized).toEqual({
      compute_units: 0.3,
      invocation_count: 0.3,
      unique_chute_count: 0.25,
      bounty_count: 0.5,
    });
    expect(scored.reduce((sum, m) => sum + m.score, 0)).toBeCloseTo(1, 12);
  });

  it("divides by 1 when a feature sums to zero", () => {
    const [only] = scoreMiners([{ ...miners[2], minerHotkey: "C" } as (typeof miners)[number]]);
    // bounty_count sums to 0: its share is 0/1, not NaN.
    expect(only?.score).toBeCloseTo(0.35 + 0.3 + 0.25, 12);
  });

  it("scales the largest weight to 65535, rounds half to even, orders by uid", () => {
    const neurons = [
      { hotkey: "C", uid: 3 },
      { hotkey: "A", uid: 7 },
      { hotkey: "B", uid: 2 },
    ];
    const vector = weightVector(scoreMiners(miners), neurons);
    // 0.3075 · 65535 / 0.565 = 35667.28…, 0.1275 · 65535 / 0.565 = 14788.87…
    expect(vector.uids).toEqual([2, 3, 7]);
    expect(vector.weights).toEqual([35667, 14789, 65535]);
  });

  it("gives no weight to hotkeys off the metagraph, without renormalising the others' scores", () => {
    const vector = weightVector(scoreMiners(miners), [
      { hotkey: "B", uid: 1 },
      { hotkey: "C", uid: 2 },
    ]);
    // B is now the largest: 0.1275 · 65535 / 0.3075 = 27172.9…
    expect(vector).toMatchObject({ uids: [1, 2], weights: [65535, 27173] });
    expect(vector.uidOf.has("A")).toBe(false);
    expect(vector.weightOf.get("A")).toBeUndefined();
    expect(weightVector(scoreMiners([]), [{ hotkey: "B", uid: 1 }])).toMatchObject({ uids: [], weights: [] });
  });

  it("rounds as Python's round()", () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999999, 2.5000001, 65534.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3, 65534]);
  });

  it("scores the 7 days before the hour it runs in", () => {
    expect(scoringWindow(new Date("2026-11-22T10:05:17Z"))).toEqual({
      start: new Date("2026-11-15T10:00:00Z"),
      end: new Date("2026-11-22T10:00:00Z"),
    });
  });
});
