import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

const { TauriBackend } = await import("./tauri");
const { AppError } = await import("./field-types");

describe("the Tauri backend", () => {
  beforeEach(() => invoke.mockReset());

  it("calls the contract's commands with camelCase arguments", async () => {
    const b = new TauriBackend();
    invoke.mockResolvedValue({});
    await b.addDevice("i1", "RJ121-WS-0423", "19045.4291");
    expect(invoke).toHaveBeenLastCalledWith("add_device", { id: "i1", hostname: "RJ121-WS-0423", buildSeen: "19045.4291" });
    await b.resolveConflict("i1", { field: "answer", item: "x" }, "7@ab");
    expect(invoke).toHaveBeenLastCalledWith("resolve_conflict", { id: "i1", field: { field: "answer", item: "x" }, candidate: "7@ab" });
    await b.addPhoto("i1", "x", "a.jpg", new Uint8Array([1, 2, 255]));
    expect(invoke).toHaveBeenLastCalledWith("add_photo", { id: "i1", item: "x", name: "a.jpg", bytes: [1, 2, 255] });
  });

  it("turns a rejection into an AppError with the contract's code", async () => {
    const b = new TauriBackend();
    invoke.mockRejectedValueOnce({ code: "invalid", message: "'not applicable' for item \"x\" needs a reason" });
    const e = await b.setAnswer("i1", "x", { kind: "not-applicable", reason: "" }).catch((e) => e);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe("invalid");
    expect(e.status).toBe(422);
    expect(e.message).toContain("needs a reason");

    invoke.mockRejectedValueOnce("command sync_now not allowed by ACL");
    const f = await b.syncNow().catch((e) => e);
    expect([f.code, f.message]).toEqual(["internal", "command sync_now not allowed by ACL"]);

    invoke.mockRejectedValueOnce({ code: "something_new", message: "?" });
    expect((await b.appStatus().catch((e) => e)).code).toBe("internal");
  });

  it("refuses a photo over 25 MB without sending it", async () => {
    const b = new TauriBackend();
    const e = await b.addPhoto("i1", "x", "big.jpg", new Uint8Array(25 * 1024 * 1024 + 1)).catch((e) => e);
    expect(e.code).toBe("too_large");
    expect(invoke).not.toHaveBeenCalled();
  });
});
