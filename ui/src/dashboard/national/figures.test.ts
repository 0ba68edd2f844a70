import { describe, expect, it } from "vitest";
import { onDays, percent } from "./figures";

describe("national figures", () => {
  it("writes shares as percentages, small ones honestly", () => {
    expect(percent(0)).toBe("0%");
    expect(percent(0.0004)).toBe("under 0.1%");
    expect(percent(0.078)).toBe("7.8%");
    expect(percent(0.5)).toBe("50%");
  });

  it("lines points up with the snapshot days, a gap where a trust has none", () => {
    const p = (as_of: string, v: number) => ({ as_of, alerts: 1, on_time: 1, overdue: v, on_time_share: null });
    expect(onDays(["2026-10-01", "2026-11-01", "2026-12-01"], [p("2026-10-01", 3), p("2026-12-01", 1)], (x) => x.overdue)).toEqual([3, null, 1]);
  });
});
