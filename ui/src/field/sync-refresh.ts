// When a screen should read the local store again: after a sync round, which may have
// brought what other people changed. The contract has no event for "a document
// changed", so arriving at "synced", or a new `last_synced_at` there, stands for it.
import type { SyncStatus } from "../lib/api/field-types";

/** Changes at each finished sync round; null while not synced. */
export function syncRound(s: SyncStatus | null): string | null {
  return s?.state === "synced" ? `synced@${s.last_synced_at ?? ""}` : null;
}
