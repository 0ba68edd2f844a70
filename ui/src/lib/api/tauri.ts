// The field app's backend: the Tauri shell's commands (docs/APP-IPC.md) over `invoke`,
// and its `sync-status` event over `listen`. JS passes arguments in camelCase; Tauri
// maps them to the Rust parameters. Every rejection becomes an AppError with the
// contract's code.
import { invoke as tauriInvoke, type InvokeArgs, type InvokeOptions } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { Answer, History, HistoryEntry, HistorySubject, InspectionView, Severity } from "./types";
import {
  AppError,
  MAX_PHOTO_BYTES,
  photoTooLargeMessage,
  type AppStatus,
  type Carried,
  type CheckOutcome,
  type CommentTarget,
  type FieldBackend,
  type FieldRef,
  type UpdateCheck,
  type UpdateInstalled,
  type InspectionSummary,
  type OpenInspection,
  type PhotoAdded,
  type SyncStatus,
} from "./field-types";

/** `invoke` of @tauri-apps/api: the default, or a stand-in passed by tests. */
export type Invoke = <T>(cmd: string, args?: InvokeArgs, options?: InvokeOptions) => Promise<T>;

export class TauriBackend implements FieldBackend {
  constructor(private readonly invoke: Invoke = tauriInvoke) {}

  private async call<T>(command: string, args?: InvokeArgs, options?: InvokeOptions): Promise<T> {
    try {
      // Called with as many arguments as given, so a JSON call looks as it always did.
      return await (options ? this.invoke<T>(command, args, options) : this.invoke<T>(command, args));
    } catch (e) {
      throw AppError.from(e);
    }
  }

  appStatus(): Promise<AppStatus> {
    return this.call("app_status");
  }

  signIn(server: string, user: string, password: string): Promise<AppStatus> {
    return this.call("sign_in", { server, user, password });
  }

  signOut(force = false): Promise<AppStatus> {
    // `force` only when set, so a plain sign-out is the call it always was.
    return force ? this.call("sign_out", { force: true }) : this.call("sign_out");
  }

  listInspections(): Promise<InspectionSummary[]> {
    return this.call("list_inspections");
  }

  openInspection(id: string): Promise<OpenInspection> {
    return this.call("open_inspection", { id });
  }

  setAnswer(id: string, item: string, answer: Answer): Promise<InspectionView> {
    return this.call("set_answer", { id, item, answer });
  }

  editNote(id: string, item: string, text: string): Promise<InspectionView> {
    return this.call("edit_note", { id, item, text });
  }

  /**
   * The contract's raw-body form: the photo's bytes are the request body (no array of
   * numbers in JSON), the other arguments travel in the `wardcheck-*` headers,
   * percent-encoded, since a header carries only ASCII and a file name need not be.
   */
  async addPhoto(id: string, item: string, name: string, bytes: Uint8Array): Promise<PhotoAdded> {
    // Refused here too, so a huge file is never copied into an IPC message.
    if (bytes.byteLength > MAX_PHOTO_BYTES) {
      throw new AppError("too_large", photoTooLargeMessage(bytes.byteLength));
    }
    // A plain object, not a Headers: under the isolation pattern the options cross a
    // postMessage to the isolation frame, and a Headers object cannot be cloned.
    const headers: Record<string, string> = {
      "wardcheck-id": encodeURIComponent(id),
      "wardcheck-item": encodeURIComponent(item),
      "wardcheck-name": encodeURIComponent(name),
    };
    return this.call("add_photo", bytes, { headers });
  }

  photoThumbnail(sha256: string): Promise<string> {
    return this.call("photo_thumbnail", { sha256 });
  }

  addDevice(id: string, hostname: string, buildSeen: string): Promise<InspectionView> {
    return this.call("add_device", { id, hostname, buildSeen });
  }

  recordObservation(id: string, device: string, item: string, answer: Answer, note: string): Promise<InspectionView> {
    return this.call("record_observation", { id, device, item, answer, note });
  }

  addFinding(id: string, severity: Severity, text: string, items: string[], recommendation: string): Promise<InspectionView> {
    return this.call("add_finding", { id, severity, text, items, recommendation });
  }

  addComment(id: string, target: CommentTarget, text: string): Promise<InspectionView> {
    return this.call("add_comment", { id, target, text });
  }

  resolveConflict(id: string, field: FieldRef, candidate: string): Promise<InspectionView> {
    return this.call("resolve_conflict", { id, field, candidate });
  }

  submitInspection(id: string): Promise<InspectionView> {
    return this.call("submit_inspection", { id });
  }

  signOff(id: string, statement: string): Promise<InspectionView> {
    return this.call("sign_off", { id, statement });
  }

  async history(id: string, subject: HistorySubject): Promise<History> {
    // The shell's entries name the author their values carry (which the server held to
    // the change's actor binding); the device is the server's to say.
    const h = await this.call<{ entries: (Omit<HistoryEntry, "author" | "device"> & { by: string | null })[]; truncated: boolean }>(
      "inspection_history",
      { id, subject },
    );
    return { truncated: h.truncated, entries: h.entries.map((e) => ({ ...e, author: e.by ?? "-", device: null })) };
  }

  syncStatus(): Promise<SyncStatus> {
    return this.call("sync_status");
  }

  syncNow(): Promise<SyncStatus> {
    return this.call("sync_now");
  }

  carriedActions(id: string): Promise<Carried> {
    return this.call("carried_actions", { id });
  }

  checkAction(id: string, action: string, outcome: CheckOutcome, note: string): Promise<Carried> {
    return this.call("check_action", { id, action, outcome, note });
  }

  takeServersCopy(document: string): Promise<SyncStatus> {
    return this.call("take_servers_copy", { document });
  }

  updateCheck(): Promise<UpdateCheck> {
    return this.call("update_check");
  }

  updateInstall(version: string): Promise<UpdateInstalled> {
    return this.call("update_install", { version });
  }

  async onSyncStatus(cb: (s: SyncStatus) => void): Promise<() => void> {
    try {
      return await listen<SyncStatus>("sync-status", (e) => cb(e.payload));
    } catch (e) {
      throw AppError.from(e);
    }
  }
}
