// The dashboard's live updates: with an event stream the page reads only when a part
// changed, and only what it needs; without one (or when it drops) it asks every few
// seconds. A fake EventSource stands in for the browser's; timers are faked.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { POLL_MS, Poll, REOPEN_MS, RETRY_MS, type Parts } from "./poll.svelte";

class FakeSource {
  static made: FakeSource[] = [];
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  readyState = FakeSource.CONNECTING;
  onerror: (() => void) | null = null;
  closed = false;
  private listeners = new Map<string, ((e: Event) => void)[]>();
  constructor(readonly url: string) {
    FakeSource.made.push(this);
  }
  addEventListener(name: string, f: (e: Event) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), f]);
  }
  close() {
    this.closed = true;
    this.readyState = FakeSource.CLOSED;
  }
  emit(name: string, data: unknown) {
    this.readyState = FakeSource.OPEN;
    for (const f of this.listeners.get(name) ?? []) f(new MessageEvent(name, { data: JSON.stringify(data) }));
  }
  fail(readyState: number) {
    this.readyState = readyState;
    this.onerror?.();
  }
}

/** A loader that records what it was asked for and answers at once. */
function loader() {
  const calls: { parts: string[] | null; last: number | null }[] = [];
  let n = 0;
  const load = async (parts: Parts, last: number | null) => {
    calls.push({ parts: parts === null ? null : [...parts].sort(), last });
    return ++n;
  };
  return { calls, load };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
};

describe("live updates", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSource.made = [];
    vi.stubGlobal("EventSource", FakeSource);
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("with a stream, reads only when a part changed, and says which", async () => {
    const { calls, load } = loader();
    const live = new Poll(load, () => "/api/v1/inspections/x/events").start();
    await settle();
    expect(calls).toEqual([{ parts: null, last: null }]);
    const es = FakeSource.made[0];
    expect(es.url).toBe("/api/v1/inspections/x/events");
    es.emit("ready", { parts: ["inspection", "review", "response"] });
    await settle();
    expect(live.pushed).toBe(true);
    expect(calls).toHaveLength(2);
    // Nothing changes: nothing is read, however long the page stays open.
    await vi.advanceTimersByTimeAsync(POLL_MS * 20);
    expect(calls).toHaveLength(2);
    es.emit("changed", { parts: ["review"] });
    await settle();
    expect(calls[2]).toEqual({ parts: ["review"], last: 2 });
    expect(live.data).toBe(3);
    live.stop();
    expect(es.closed).toBe(true);
  });

  it("changes told while a read is under way are read once, together, after it", async () => {
    const calls: (string[] | null)[] = [];
    let release: () => void = () => {};
    const live = new Poll(
      (parts: Parts) => {
        calls.push(parts === null ? null : [...parts].sort());
        return new Promise<number>((resolve) => (release = () => resolve(calls.length)));
      },
      () => "/events",
    ).start();
    const es = FakeSource.made[0];
    release();
    await settle();
    es.emit("ready", { parts: ["inspection", "response"] });
    await settle();
    release();
    await settle();
    es.emit("changed", { parts: ["response"] });
    await settle();
    // While that read is under way, two more changes.
    es.emit("changed", { parts: ["inspection"] });
    es.emit("changed", { parts: ["response"] });
    release();
    await settle();
    release();
    await settle();
    expect(calls).toEqual([null, null, ["response"], ["inspection", "response"]]);
    live.stop();
  });

  it("asks every few seconds while the stream is down, and subscribes again", async () => {
    const { calls, load } = loader();
    const live = new Poll(load, () => "/events").start();
    await settle();
    const es = FakeSource.made[0];
    es.emit("ready", { parts: ["inspection"] });
    await settle();
    const read = calls.length;
    // Dropped: the browser reconnects by itself; meanwhile the page asks.
    es.fail(FakeSource.CONNECTING);
    expect(live.pushed).toBe(false);
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(calls.length).toBe(read + 1);
    // Back: `ready` again, everything read once more, and no more asking.
    es.emit("ready", { parts: ["inspection"] });
    await settle();
    const after = calls.length;
    await vi.advanceTimersByTimeAsync(POLL_MS * 4);
    expect(calls.length).toBe(after);
    // Refused by the server (the browser gives up): asked meanwhile, subscribed again later.
    es.fail(FakeSource.CLOSED);
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(calls.length).toBe(after + 1);
    expect(FakeSource.made).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(FakeSource.made).toHaveLength(2);
    live.stop();
  });

  it("a stream the server closes (rights or sign-in changed) is opened again soon", async () => {
    const { load } = loader();
    const live = new Poll(load, () => "/events").start();
    await settle();
    FakeSource.made[0].emit("ready", { parts: ["inspection"] });
    await settle();
    FakeSource.made[0].emit("closed", { reason: "rights_changed" });
    expect(FakeSource.made[0].closed).toBe(true);
    expect(live.pushed).toBe(false);
    await vi.advanceTimersByTimeAsync(REOPEN_MS);
    expect(FakeSource.made).toHaveLength(2);
    live.stop();
  });

  it("without EventSource, it asks every few seconds as before", async () => {
    vi.stubGlobal("EventSource", undefined);
    const { calls, load } = loader();
    const live = new Poll(load, () => "/events").start();
    await settle();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(POLL_MS * 3);
    expect(calls).toHaveLength(4);
    expect(calls.every((c) => c.parts === null)).toBe(true);
    live.stop();
  });
});
