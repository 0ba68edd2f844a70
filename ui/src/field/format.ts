// Words for the field app's status and values, as the inspector reads them.
import type { Evidence, FieldRef, SyncStatus, UploadProgress } from "../lib/api/field-types";
import { localClock } from "../lib/format";

/** `2026-11-29T14:32:05Z` as "14:32", in the device's own time zone. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return localClock(d);
}

/** The status bar's headline. The words are part of the contract (docs/APP-IPC.md). */
export function syncStateText(s: SyncStatus | null): string {
  if (!s) return "Checking sync…";
  switch (s.state) {
    case "signed_out":
      return "Not signed in";
    case "offline":
      return "Offline";
    case "syncing":
      return "Syncing";
    case "synced":
      return s.last_synced_at ? `Synced at ${clock(s.last_synced_at)}` : "Synced";
    case "error":
      return "Sync failed";
  }
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** "7 changes and 3 photos not yet on the server". */
export function pendingText(s: Pick<SyncStatus, "pending_changes" | "pending_photos" | "pending_checks">): string {
  const base = `${plural(s.pending_changes, "change", "changes")} and ${plural(s.pending_photos, "photo", "photos")} not yet on the server`;
  const checks = s.pending_checks ?? 0;
  return checks ? `${base}; ${plural(checks, "action check", "action checks")} waiting` : base;
}

const MB = 1024 * 1024;

/** Megabytes for a progress line: whole numbers, or one decimal below 10 MB. */
export function megabytes(n: number, scale: number): string {
  const mb = n / MB;
  return scale >= 10 * MB ? String(Math.round(mb)) : mb.toFixed(1);
}

/** "3 of 12 photos, 18 of 41 MB". */
export function uploadText(u: UploadProgress): string {
  return `${u.done_photos} of ${plural(u.total_photos, "photo", "photos")}, ${megabytes(u.done_bytes, u.total_bytes)} of ${megabytes(u.total_bytes, u.total_bytes)} MB`;
}

/** A conflict's field as one string (the `data-field` attribute): `answer:ndg1-x`, `observation:DEVICE:ITEM`. */
export function fieldKey(f: FieldRef): string {
  switch (f.field) {
    case "state":
      return "state";
    case "answer":
      return `answer:${f.item}`;
    case "device_hostname":
      return `device_hostname:${f.device}`;
    case "device_build":
      return `device_build:${f.device}`;
    case "observation":
      return `observation:${f.device}:${f.item}`;
    case "finding_severity":
      return `finding_severity:${f.finding}`;
  }
}

const EVIDENCE: Record<Evidence, string> = {
  photo: "a photo",
  note: "a note",
  "sampled-device": "checks on sampled devices",
};

/** An item's evidence as a phrase: "a photo and a note"; "" for none. */
export function evidenceText(evidence: readonly Evidence[] | null | undefined): string {
  const words = (evidence ?? []).map((e) => EVIDENCE[e] ?? e);
  if (words.length <= 1) return words[0] ?? "";
  return `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}
