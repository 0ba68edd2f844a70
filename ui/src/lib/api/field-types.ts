// The field app's side of the IPC contract (docs/APP-IPC.md): the values the Tauri
// shell's commands take and return, and `FieldBackend`, the one interface the field
// app's components use to reach it. `tauri.ts` implements it over `invoke`; tests pass
// a fake. Shapes shared with the server (InspectionView and its parts) come from
// types.ts, unchanged.
import { ApiError } from "./backend";
import type { Answer, CommentTarget, CorrectiveAction, History, HistorySubject, InspectionView, Severity, State } from "./types";

/** Where the store's key and the device token are kept. */
export type Keystore = "os" | "test" | "unavailable";

export interface SignedIn {
  server: string;
  user: string;
  display_name: string;
  role: string;
  device_id: number;
}

export interface AppStatus {
  version: string;
  keystore: Keystore;
  /** Why no keychain could be used; shown alone when `keystore` is "unavailable". */
  keystore_error: string | null;
  signed_in: SignedIn | null;
  /** Set when this device's data was deleted at the server's request (revoked with a
   *  wipe): why, when, and what had not reached the server. Kept until the next sign-in. */
  wiped?: Wiped | null;
}

export interface Wiped {
  at: string;
  reason: string;
  unsynced_changes: number;
  unsynced_photos: number;
  /** Whether the server heard the count. */
  reported: boolean;
}

/** One row of the home screen: everything is read from the local store. */
export interface InspectionSummary {
  id: string;
  trust: string;
  sites: string[];
  state: State;
  checklist_title: string;
  created_at: string;
  visit_start: string | null;
  answered: number;
  total: number;
  conflicts: number;
  /** Set when this device cannot open it yet: which checklist it needs and why that
   * cannot be had. Shown, not opened. */
  unavailable: string | null;
}

export type Scope = "inspection" | "device";

/**
 * The answer an item takes (the core's `AnswerKind`, serde form): met / partly met /
 * not met (and not applicable with a reason) for `compliance`, else a number (within
 * `min`..`max` where set), a date or a text.
 */
export type AnswerKind =
  | { kind: "compliance" }
  | { kind: "number"; min: number | null; max: number | null; unit: string | null }
  | { kind: "date" }
  | { kind: "text" };

/** What evidence an item asks for. */
export type Evidence = "photo" | "note" | "sampled-device";

export interface ChecklistItemForApp {
  id: string;
  prompt: string;
  guidance: string;
  /** Labels such as `NDG standard 7`, `CAF-aligned DSPT B4.d`, `CIS Windows 10 9.1`. */
  references: string[];
  scope: Scope;
  answer: AnswerKind;
  /** For device checks: how to observe it on the device (the setting or command). */
  observe: string | null;
  evidence: Evidence[];
  /** The central telemetry check set beside the answer and how it judges, in words;
   *  null when the item has none. */
  telemetry: string | null;
}

export interface ChecklistSectionForApp {
  id: string;
  title: string;
  scope: Scope;
  items: ChecklistItemForApp[];
}

/** The checklist an inspection pins, as the app shows it. */
export interface ChecklistForApp {
  id: string;
  version: string;
  title: string;
  sections: ChecklistSectionForApp[];
}

export interface OpenInspection {
  view: InspectionView;
  checklist: ChecklistForApp;
}

export interface PhotoAdded {
  sha256: string;
  bytes: number;
  view: InspectionView;
}

/** What a comment is about (the core's `CommentTarget`), as the server's views carry it. */
export type { CommentTarget } from "./types";

/** A field that can hold a conflict (the core's `FieldRef`): `InspectionView.conflicts` lists these. */
export type FieldRef =
  | { field: "state" }
  | { field: "answer"; item: string }
  | { field: "device_hostname"; device: string }
  | { field: "device_build"; device: string }
  | { field: "observation"; device: string; item: string }
  | { field: "finding_severity"; finding: string };

export type SyncState = "signed_out" | "offline" | "syncing" | "synced" | "error";

export interface UploadProgress {
  done_photos: number;
  total_photos: number;
  done_bytes: number;
  total_bytes: number;
}

/** A document whose change the server refused: kept on this device, not sent again. */
export interface RefusedDoc {
  document: string;
  inspection: string;
  /** The server's stable code, e.g. `wrong_state`. */
  code: string;
  message: string;
}

export interface SyncStatus {
  state: SyncState;
  /** RFC 3339. */
  last_synced_at: string | null;
  /** Local changes the server has not acknowledged, across all documents. */
  pending_changes: number;
  /** Photos not yet fully uploaded. */
  pending_photos: number;
  pending_photo_bytes: number;
  /** Checks of carried-over corrective actions kept here, not yet on the server (absent
   *  from an older app build: read as 0). */
  pending_checks?: number;
  upload: UploadProgress | null;
  message: string | null;
  /** Photos from other devices fetched since the app started: when it moves, a photo
   * shown as "on the server" may be here now. */
  photos_fetched: number;
  /** Times changes from the server (other people's edits) were stored since the app
   * started: when it moves, screens read the store again. */
  changes_received: number;
  /** Documents whose changes the server refused (each waits for `takeServersCopy`). */
  refused: RefusedDoc[];
}

/** The codes an `AppError` carries (docs/APP-IPC.md, Conventions). */
export type AppErrorCode =
  | "not_signed_in"
  | "offline"
  | "unauthorized"
  | "no_keychain"
  | "not_found"
  | "invalid"
  | "too_large"
  | "bad_image"
  | "storage"
  | "update_refused"
  | "update_failed"
  | "internal";

const CODES: readonly AppErrorCode[] = [
  "not_signed_in",
  "offline",
  "unauthorized",
  "no_keychain",
  "not_found",
  "invalid",
  "too_large",
  "bad_image",
  "storage",
  "update_refused",
  "update_failed",
  "internal",
];

/** The HTTP status that means the same, so code written against ApiError branches alike. */
const STATUS: Record<AppErrorCode, number> = {
  not_signed_in: 401,
  unauthorized: 401,
  offline: 503,
  no_keychain: 500,
  not_found: 404,
  invalid: 422,
  too_large: 413,
  bad_image: 422,
  storage: 500,
  update_refused: 422,
  update_failed: 500,
  internal: 500,
};

/**
 * A command that rejected: the contract's `{code, message}`. An ApiError, so shared
 * components treat it as they treat the HTTP backend's errors; `message` is a sentence
 * an inspector can act on.
 */
export class AppError extends ApiError {
  declare readonly code: AppErrorCode;

  constructor(code: AppErrorCode, message: string) {
    super(STATUS[code], code, message);
    this.name = "AppError";
  }

  /** Whatever a command rejected with, as an AppError (unknown codes become `internal`). */
  static from(e: unknown): AppError {
    if (e instanceof AppError) return e;
    if (e && typeof e === "object" && "code" in e && typeof e.code === "string") {
      const message = "message" in e && typeof e.message === "string" ? e.message : e.code;
      const code = (CODES as readonly string[]).includes(e.code) ? (e.code as AppErrorCode) : "internal";
      return new AppError(code, message);
    }
    // Tauri itself rejects with a string (an unknown command, a missing permission).
    if (typeof e === "string") return new AppError("internal", e);
    if (e instanceof Error) return new AppError("internal", e.message);
    return new AppError("internal", String(e));
  }
}

/**
 * The most bytes `add_photo` takes (docs/APP-IPC.md): 25 MiB, 26,214,400 bytes. Larger
 * photos are refused before sending.
 */
export const MAX_PHOTO_BYTES = 25 * 1024 * 1024;

/** 26214401 as "26,214,401" (no locale data needed). */
function grouped(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Why a photo of `size` bytes is refused: its size in MB and, since 25.0 MB can be just
 * over the limit, in bytes too. `name` starts the sentence when given.
 */
export function photoTooLargeMessage(size: number, name?: string): string {
  const mb = (size / (1024 * 1024)).toFixed(1);
  const what = name ? `${name} is` : "The photo is";
  return `${what} ${mb} MB (${grouped(size)} bytes): a photo may be at most 25 MB (${grouped(MAX_PHOTO_BYTES)} bytes). Take it again at a lower resolution, or choose a smaller file.`;
}

/** Every command of the contract, typed. Arguments are as the contract names them. */
/** What an inspector found on site of an action carried over from an earlier visit. */
export type CheckOutcome = "done" | "partly" | "not_done";

/** This device's check of a carried-over action. */
export interface LocalCheck {
  outcome: CheckOutcome;
  note: string;
  checked_at: string;
  /** `waiting`: kept here, not yet on the server; `sent`; `refused` (see `message`). */
  state: "waiting" | "sent" | "refused";
  message: string | null;
}

/** The open actions of earlier visits carried over to an inspection (`carried_actions`). */
export interface Carried {
  /** When this device last took them from the server; null if never. */
  taken_at: string | null;
  actions: (CorrectiveAction & { check: LocalCheck | null })[];
}

/** `update_check`: this app's version, and a newer one the server offers. */
export interface UpdateCheck {
  current: string;
  available: { version: string; notes: string; date: string | null } | null;
}

/** `update_install`: the package was verified against the app's release key and installed. */
export interface UpdateInstalled {
  version: string;
  bytes: number;
  /** Start the app again to run the new version (Linux, macOS). */
  restart_needed: boolean;
}

export interface FieldBackend {
  appStatus(): Promise<AppStatus>;
  signIn(server: string, user: string, password: string): Promise<AppStatus>;
  /** Refused (`invalid`) with work not yet on the server, unless `force`. */
  signOut(force?: boolean): Promise<AppStatus>;

  listInspections(): Promise<InspectionSummary[]>;
  openInspection(id: string): Promise<OpenInspection>;
  setAnswer(id: string, item: string, answer: Answer): Promise<InspectionView>;
  editNote(id: string, item: string, text: string): Promise<InspectionView>;
  addPhoto(id: string, item: string, name: string, bytes: Uint8Array): Promise<PhotoAdded>;
  /** A `data:image/jpeg;base64,...` URL. */
  photoThumbnail(sha256: string): Promise<string>;
  addDevice(id: string, hostname: string, buildSeen: string): Promise<InspectionView>;
  recordObservation(id: string, device: string, item: string, answer: Answer, note: string): Promise<InspectionView>;
  addFinding(
    id: string,
    severity: Severity,
    text: string,
    items: string[],
    recommendation: string,
  ): Promise<InspectionView>;
  addComment(id: string, target: CommentTarget, text: string): Promise<InspectionView>;
  resolveConflict(id: string, field: FieldRef, candidate: string): Promise<InspectionView>;
  submitInspection(id: string): Promise<InspectionView>;
  signOff(id: string, statement: string): Promise<InspectionView>;
  /** Every value the fields of an item, finding or device held, from this device's copy. */
  history(id: string, subject: HistorySubject): Promise<History>;

  /** The open actions of earlier visits to the trust, as last taken from the server. */
  carriedActions(id: string): Promise<Carried>;
  /** Records a check of a carried-over action on site; kept at once, sent when online. */
  checkAction(id: string, action: string, outcome: CheckOutcome, note: string): Promise<Carried>;

  syncStatus(): Promise<SyncStatus>;
  /** Wakes the sync worker; never waits for the network. */
  syncNow(): Promise<SyncStatus>;
  /** Sets this device's copy of a refused document aside and fetches the server's. */
  takeServersCopy(document: string): Promise<SyncStatus>;
  /** Calls `cb` with each `sync-status` event; resolves to a function that stops listening. */
  onSyncStatus(cb: (s: SyncStatus) => void): Promise<() => void>;

  /** Asks the server whether a newer version of the app is offered (online only). */
  updateCheck(): Promise<UpdateCheck>;
  /** Downloads `version`, checks its signature against the app's release key and installs
   * it; refused (`update_refused`) when the signature does not hold. */
  updateInstall(version: string): Promise<UpdateInstalled>;
}

/** The conflicts of a view, typed (types.ts keeps them as `unknown[]`). */
export function conflictsOf(view: InspectionView): FieldRef[] {
  return view.conflicts as FieldRef[];
}
