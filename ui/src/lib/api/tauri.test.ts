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
  });

  it("signs out plainly, or with force only when asked", async () => {
    const b = new TauriBackend();
    invoke.mockResolvedValue({});
    await b.signOut();
    expect(invoke).toHaveBeenLastCalledWith("sign_out", undefined);
    await b.signOut(true);
    expect(invoke).toHaveBeenLastCalledWith("sign_out", { force: true });
  });

  it("sends a photo as the raw body, the other arguments in percent-encoded headers", async () => {
    // The invoke the backend is given, not the module's.
    const injected = vi.fn(async (..._a: unknown[]) => ({ sha256: "ab", bytes: 3, view: {} }) as never);
    const b = new TauriBackend(injected);
    const id = "11111111-1111-4111-8111-111111111111";
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 255]);
    const added = await b.addPhoto(id, "ndg7-clear-desk", "Ward 3 & café, 100%.jpg", bytes);
    expect(added.sha256).toBe("ab");
    expect(invoke).not.toHaveBeenCalled();
    expect(injected).toHaveBeenCalledTimes(1);
    const [cmd, body, options] = injected.mock.calls[0] as [string, unknown, { headers: Record<string, string> }];
    expect(cmd).toBe("add_photo");
    // The very bytes, as a Uint8Array: never an array of numbers in a JSON object.
    expect(body).toBeInstanceOf(Uint8Array);
    expect(Array.isArray(body)).toBe(false);
    expect([...(body as Uint8Array)]).toEqual([0xff, 0xd8, 0xff, 0xe0, 1, 2, 255]);
    // A plain object (it crosses postMessage to the isolation frame), ASCII only.
    expect(Object.getPrototypeOf(options.headers)).toBe(Object.prototype);
    expect(options.headers).toEqual({
      "wardcheck-id": id,
      "wardcheck-item": "ndg7-clear-desk",
      "wardcheck-name": "Ward%203%20%26%20caf%C3%A9%2C%20100%25.jpg",
    });
    for (const v of Object.values(options.headers)) expect(v).toMatch(/^[\x21-\x7e]*$/);
    // What the shell's percent-decoding gives back.
    expect(decodeURIComponent(options.headers["wardcheck-name"])).toBe("Ward 3 & café, 100%.jpg");
  });

  it("sends a photo of exactly 25 MiB, and refuses one byte more before sending", async () => {
    const injected = vi.fn(async (..._a: unknown[]) => ({}) as never);
    const b = new TauriBackend(injected);
    await b.addPhoto("i1", "x", "max.jpg", new Uint8Array(26_214_400));
    expect(injected).toHaveBeenCalledTimes(1);

    const e = await b.addPhoto("i1", "x", "big.jpg", new Uint8Array(26_214_401)).catch((e) => e);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe("too_large");
    expect(e.message).toBe(
      "The photo is 25.0 MB (26,214,401 bytes): a photo may be at most 25 MB (26,214,400 bytes). Take it again at a lower resolution, or choose a smaller file.",
    );
    expect(injected).toHaveBeenCalledTimes(1);
  });

  it("turns the shell's refusal of a photo into an AppError", async () => {
    const injected = vi.fn(async (..._a: unknown[]): Promise<never> => {
      throw { code: "bad_image", message: "The file is not a photo Wardcheck can read (JPEG, PNG or HEIC)." };
    });
    const e = await new TauriBackend(injected).addPhoto("i1", "x", "notes.txt", new Uint8Array([1])).catch((e) => e);
    expect([e.code, e.status]).toEqual(["bad_image", 422]);
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
