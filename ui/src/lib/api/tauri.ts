// The field app's backend: the Tauri shell's commands (docs/APP-IPC.md) over `invoke`,
// and its `sync-status` event over `listen`. JS passes arguments in camelCase; Tauri
// maps them to the Rust parameters. Every rejection becomes an AppError with the
// contract's code.
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { Answer, InspectionView, Severity } from "./types";
import {
  AppError,
  MAX_PHOTO_BYTES,
  type AppStatus,
  type CommentTarget,
  type FieldBackend,
  type FieldRef,
  type InspectionSummary,
  type OpenInspection,
  type PhotoAdded,
  type SyncStatus,
} from "./field-types";

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw AppError.from(e);
  }
}

export class TauriBackend implements FieldBackend {
  appStatus(): Promise<AppStatus> {
    return call("app_status");
  }

  signIn(server: string, user: string, password: string): Promise<AppStatus> {
    return call("sign_in", { server, user, password });
  }

  signOut(): Promise<AppStatus> {
    return call("sign_out");
  }

  listInspections(): Promise<InspectionSummary[]> {
    return call("list_inspections");
  }

  openInspection(id: string): Promise<OpenInspection> {
    return call("open_inspection", { id });
  }

  setAnswer(id: string, item: string, answer: Answer): Promise<InspectionView> {
    return call("set_answer", { id, item, answer });
  }

  editNote(id: string, item: string, text: string): Promise<InspectionView> {
    return call("edit_note", { id, item, text });
  }

  async addPhoto(id: string, item: string, name: string, bytes: Uint8Array): Promise<PhotoAdded> {
    // Refused here too, so a huge file is never copied into an IPC message.
    if (bytes.length > MAX_PHOTO_BYTES) {
      throw new AppError("too_large", `The photo is ${(bytes.length / 1048576).toFixed(0)} MB: at most 25 MB is allowed.`);
    }
    // The contract's JSON form: the bytes as an array of numbers.
    return call("add_photo", { id, item, name, bytes: Array.from(bytes) });
  }

  photoThumbnail(sha256: string): Promise<string> {
    return call("photo_thumbnail", { sha256 });
  }

  addDevice(id: string, hostname: string, buildSeen: string): Promise<InspectionView> {
    return call("add_device", { id, hostname, buildSeen });
  }

  recordObservation(id: string, device: string, item: string, answer: Answer, note: string): Promise<InspectionView> {
    return call("record_observation", { id, device, item, answer, note });
  }

  addFinding(id: string, severity: Severity, text: string, items: string[], recommendation: string): Promise<InspectionView> {
    return call("add_finding", { id, severity, text, items, recommendation });
  }

  addComment(id: string, target: CommentTarget, text: string): Promise<InspectionView> {
    return call("add_comment", { id, target, text });
  }

  resolveConflict(id: string, field: FieldRef, candidate: string): Promise<InspectionView> {
    return call("resolve_conflict", { id, field, candidate });
  }

  submitInspection(id: string): Promise<InspectionView> {
    return call("submit_inspection", { id });
  }

  signOff(id: string, statement: string): Promise<InspectionView> {
    return call("sign_off", { id, statement });
  }

  syncStatus(): Promise<SyncStatus> {
    return call("sync_status");
  }

  syncNow(): Promise<SyncStatus> {
    return call("sync_now");
  }

  async onSyncStatus(cb: (s: SyncStatus) => void): Promise<() => void> {
    try {
      return await listen<SyncStatus>("sync-status", (e) => cb(e.payload));
    } catch (e) {
      throw AppError.from(e);
    }
  }
}
