import { describe, expect, it } from "vitest";
import { pendingText } from "./format";

describe("the pending line", () => {
  it("names action checks only when some wait", () => {
    expect(pendingText({ pending_changes: 0, pending_photos: 0, pending_checks: 0 })).toBe("0 changes and 0 photos not yet on the server");
    expect(pendingText({ pending_changes: 1, pending_photos: 0 })).toBe("1 change and 0 photos not yet on the server");
    expect(pendingText({ pending_changes: 0, pending_photos: 0, pending_checks: 2 })).toBe(
      "0 changes and 0 photos not yet on the server; 2 action checks waiting",
    );
  });
});
