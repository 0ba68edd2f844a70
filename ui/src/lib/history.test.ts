import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "./api/types";
import { describeEntry } from "./history";

const entry = (e: Partial<HistoryEntry>): HistoryEntry => ({
  field: "answer",
  about: null,
  value: null,
  author: "ann",
  device: null,
  at: "2026-11-01T10:00:00Z",
  change: "c",
  ...e,
});

describe("describeEntry", () => {
  it("reads an answer, a pick between concurrent answers, and a note", () => {
    expect(describeEntry(entry({ value: { value: { kind: "met" }, by: "ann" } }))).toEqual({ field: "Answer", value: "Met" });
    const picked = describeEntry(entry({ value: { value: { kind: "not-met" }, by: "ian", resolved: { by: "ann" } } }));
    expect(picked.value).toBe("Not met (picked by ann)");
    expect(describeEntry(entry({ field: "note", value: "Saw the board" })).value).toBe("Saw the board");
    expect(describeEntry(entry({ field: "note", value: "" })).value).toBe("(empty)");
  });

  it("says a photo or a link was removed when the value is null", () => {
    expect(describeEntry(entry({ field: "photo", about: "ab".repeat(32), value: null })).value).toMatch(/^removed abab/);
    expect(describeEntry(entry({ field: "link", about: "c1", value: null })).value).toBe("unlinked c1");
    expect(describeEntry(entry({ field: "link", about: "c1", value: { by: "ann" } })).value).toBe("linked c1");
  });
});
