// The sync worker's status as the UI shows it: asked once, then kept current by the
// `sync-status` events the worker emits on each change.
import { AppError, type FieldBackend, type SyncStatus } from "../lib/api/field-types";

export class SyncStore {
  status = $state.raw<SyncStatus | null>(null);
  /** Set when the status could not be read at all. */
  error = $state<string | null>(null);
  #stop: (() => void) | null = null;
  #started = false;

  constructor(private readonly backend: FieldBackend) {}

  /** Listens first and asks second, so no event between the two is missed. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    let heard = false;
    try {
      this.#stop = await this.backend.onSyncStatus((s) => {
        heard = true;
        this.status = s;
        this.error = null;
      });
      const s = await this.backend.syncStatus();
      if (!heard) this.status = s;
    } catch (e) {
      this.error = AppError.from(e).message;
    }
  }

  stop(): void {
    this.#stop?.();
    this.#stop = null;
    this.#started = false;
  }

  /** Sets this device's copy of a refused document aside and takes the server's. */
  async takeServersCopy(document: string): Promise<void> {
    try {
      this.status = await this.backend.takeServersCopy(document);
      this.error = null;
    } catch (e) {
      this.error = AppError.from(e).message;
    }
  }

  /** Wakes the worker; the status it answers with is shown at once. */
  async syncNow(): Promise<void> {
    try {
      this.status = await this.backend.syncNow();
      this.error = null;
    } catch (e) {
      this.error = AppError.from(e).message;
    }
  }
}
