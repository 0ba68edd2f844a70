// The hand-written dates (format.ts says why not `Intl`): the same words `Intl` writes
// for en-GB, checked against `Intl` itself where Node has it.
import { describe, expect, it } from "vitest";
import { day, localClock, when } from "./format";
import { clock } from "../field/format";

describe("dates without Intl", () => {
  it("writes a timestamp as day, short month, year and 24-hour time in UTC", () => {
    expect(when("2026-11-08T10:50:00Z")).toBe("8 Nov 2026, 10:50");
    expect(when("2026-09-01T00:05:59Z")).toBe("1 Sept 2026, 00:05");
    // An offset is turned into UTC, not kept.
    expect(when("2026-06-30T23:30:00-01:00")).toBe("1 Jul 2026, 00:30");
  });

  it("writes a date alone, or the day of a timestamp", () => {
    expect(day("2026-02-28")).toBe("28 Feb 2026");
    expect(day("2024-12-31T23:59:59Z")).toBe("31 Dec 2024");
  });

  it("agrees with Intl for every month", () => {
    for (let m = 0; m < 12; m++) {
      const d = new Date(Date.UTC(2026, m, 15, 7, 3));
      const intl = d.toLocaleString("en-GB", {
        day: "numeric",
        month: "short",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        timeZone: "UTC",
      });
      expect(when(d.toISOString())).toBe(intl);
    }
  });

  it("gives back what it cannot read, and nothing for nothing", () => {
    expect(when("not a date")).toBe("not a date");
    expect(day("2026-13-45")).toBe("2026-13-45");
    expect(when(null)).toBe("");
    expect(day(undefined)).toBe("");
    expect(clock("")).toBe("");
  });

  it("writes the clock in the device's time zone (UTC in the tests)", () => {
    expect(clock("2026-11-29T14:32:05Z")).toBe("14:32");
    expect(localClock(new Date(Date.UTC(2026, 0, 1, 9, 7)))).toBe("09:07");
  });
});
