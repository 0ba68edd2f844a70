// When a screen should read the local store again: after a sync round, or whenever the
// shell stored what other people changed (`changes_received` moves, even while the
// state stays "synced").
import type { SyncStatus } from "../lib/api/field-types";

/** Changes at each finished sync round; null while not synced. */
export function syncRound(s: SyncStatus | null): string | null {
  return s?.state === "synced" ? `synced@${s.last_synced_at ?? ""}#${s.changes_received}` : null;
}
