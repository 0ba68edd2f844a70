// Live updates by polling: while the page is visible, ask again every few seconds; a
// hidden tab stops asking and asks at once when it is shown again. The server already
// holds every synced change, so what an inspector syncs appears here within one period,
// with no socket to keep open and nothing to reconnect.

/** How often a visible page asks again. */
export const POLL_MS = 2500;

export class Poll<T> {
  data = $state<T | null>(null);
  error = $state<unknown>(null);
  /** When the server last answered. */
  checked = $state<Date | null>(null);
  /** When what the server sent last differed from what was shown; `changes` counts them. */
  changed = $state<Date | null>(null);
  changes = $state(0);
  private last = "";
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private inFlight = false;
  private readonly onVisible = () => {
    if (document.visibilityState === "visible") this.tick();
  };

  constructor(private readonly load: () => Promise<T>) {}

  start(): this {
    document.addEventListener("visibilitychange", this.onVisible);
    this.tick();
    return this;
  }

  stop() {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick() {
    if (this.stopped || this.inFlight) return;
    if (this.timer) clearTimeout(this.timer);
    this.inFlight = true;
    try {
      const data = await this.load();
      // Only a real change replaces the data, so nothing re-renders (and no screen
      // reader hears "updated") every few seconds for nothing.
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
    } finally {
      this.inFlight = false;
    }
    if (!this.stopped && document.visibilityState === "visible") {
      this.timer = setTimeout(() => this.tick(), POLL_MS);
    }
  }
}
