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
  private inFlight: Promise<void> | null = null;
  private readonly onVisible = () => {
    if (document.visibilityState === "visible") this.tick();
  };

  constructor(private readonly load: () => Promise<T>) {}

  start(): this {
    document.addEventListener("visibilitychange", this.onVisible);
    this.tick();
    return this;
  }

  /** Asks again now, whatever the timer says: after this page changed something, so
   *  that the change shows at once. A request already under way is waited for first,
   *  since it may have left before the change was made. */
  async refresh(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    await this.tick();
  }

  stop() {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.timer) clearTimeout(this.timer);
  }

  private tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    if (this.timer) clearTimeout(this.timer);
    this.inFlight = this.loadOnce().finally(() => {
      this.inFlight = null;
      if (!this.stopped && document.visibilityState === "visible") {
        this.timer = setTimeout(() => this.tick(), POLL_MS);
      }
    });
    return this.inFlight;
  }

  private async loadOnce() {
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
    }
  }
}
