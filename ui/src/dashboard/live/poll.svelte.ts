// Live updates. Given an event stream (`GET /api/v1/inspections/{id}/events`), the page
// reads once, then again only when the server says a part changed, and only what that
// needs (the loader is told which parts). Without a stream (none given, the browser
// lacks EventSource, or the stream dropped) it asks every few seconds while visible, as
// before: a hidden tab stops asking and asks at once when shown again. A dropped stream
// is opened again (by the browser, or after RETRY_MS if the server refused it).

/** How often a visible page asks when nothing pushes changes to it. */
export const POLL_MS = 2500;
/** How long after the server refused or ended a stream the page subscribes again. */
export const RETRY_MS = 30_000;
/** How long after the server closed a stream (rights or sign-in changed) it tries again. */
export const REOPEN_MS = 1000;

/** The parts of an inspection that changed: `null` is everything. */
export type Parts = ReadonlySet<string> | null;

export class Poll<T> {
  data = $state<T | null>(null);
  error = $state<unknown>(null);
  /** When the server last answered. */
  checked = $state<Date | null>(null);
  /** When what the server sent last differed from what was shown; `changes` counts them. */
  changed = $state<Date | null>(null);
  changes = $state(0);
  /** Whether the server pushes changes now (an open event stream) rather than being asked. */
  pushed = $state(false);
  private last = "";
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private source: EventSource | null = null;
  private stopped = false;
  private inFlight: Promise<void> | null = null;
  /** What changed and is not read yet: `null` everything, an empty set nothing. */
  private due: Set<string> | null = new Set();
  private readonly onVisible = () => {
    if (document.visibilityState === "visible" && !this.pushed) void this.tick(null);
  };

  /** `load(parts, last)` reads what `parts` needs (all of it when `null`), given what it
   *  read last; `events()` is the event stream's address, if there is one. */
  constructor(
    private readonly load: (parts: Parts, last: T | null) => Promise<T>,
    private readonly events: () => string | null = () => null,
  ) {}

  start(): this {
    document.addEventListener("visibilitychange", this.onVisible);
    void this.tick(null);
    this.listen();
    return this;
  }

  /** Reads everything again now: after this page changed something, so that the change
   *  shows at once. A read already under way is waited for first, since it may have left
   *  before the change was made. */
  async refresh(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    await this.tick(null);
  }

  stop() {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.timer) clearTimeout(this.timer);
    if (this.retry) clearTimeout(this.retry);
    this.source?.close();
    this.source = null;
  }

  private mark(parts: Parts) {
    if (parts === null || this.due === null) this.due = null;
    else for (const p of parts) this.due.add(p);
  }

  private tick(parts: Parts): Promise<void> {
    this.mark(parts);
    if (this.stopped) return Promise.resolve();
    // The read under way reads again, when it ends, what came due meanwhile.
    if (this.inFlight) return this.inFlight;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const due = this.due;
    this.due = new Set();
    this.inFlight = this.loadOnce(due).finally(() => {
      this.inFlight = null;
      if (this.stopped) return;
      if (this.due === null || this.due.size > 0) void this.tick(new Set());
      else this.arm();
    });
    return this.inFlight;
  }

  /** Asks again in POLL_MS, unless changes are pushed or the page is hidden. */
  private arm() {
    if (this.stopped || this.pushed || this.timer || this.inFlight) return;
    if (document.visibilityState !== "visible") return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick(null);
    }, POLL_MS);
  }

  private listen() {
    const url = this.events();
    if (this.stopped || !url || typeof EventSource === "undefined") return;
    const es = new EventSource(url);
    this.source = es;
    es.addEventListener("ready", () => {
      this.pushed = true;
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      // What changed between the first read and the subscription.
      void this.tick(null);
    });
    es.addEventListener("changed", (e) => void this.tick(partsOf(e)));
    es.addEventListener("closed", () => this.lost(es, REOPEN_MS));
    es.onerror = () => {
      // A dropped stream the browser opens again by itself (and says `ready` again); one
      // the server refused it does not. Meanwhile the page asks, as without a stream.
      if (es.readyState === EventSource.CLOSED) this.lost(es, RETRY_MS);
      else {
        this.pushed = false;
        this.arm();
      }
    };
  }

  private lost(es: EventSource, after: number) {
    es.close();
    if (this.source === es) this.source = null;
    this.pushed = false;
    this.arm();
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.listen();
    }, after);
  }

  private async loadOnce(parts: Parts) {
    try {
      const data = await this.load(parts, this.data);
      // Only a real change replaces the data, so nothing re-renders (and no screen
      // reader hears "updated") for nothing.
      const text = JSON.stringify(data);
      if (text !== this.last) {
        if (this.last) this.changes++;
        this.last = text;
        this.data = data;
        this.changed = new Date();
      }
      this.error = null;
      this.checked = new Date();
    } catch (e) {
      this.error = e;
    }
  }
}

/** The parts a `changed` event names; `null` (everything) if it cannot be read. */
function partsOf(e: Event): Parts {
  try {
    const parts: unknown = JSON.parse((e as MessageEvent).data)?.parts;
    return Array.isArray(parts) ? new Set(parts.map(String)) : null;
  } catch {
    return null;
  }
}
