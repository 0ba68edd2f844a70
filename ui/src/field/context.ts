// What every field app component reaches through Svelte context: the backend (the Tauri
// commands, or a fake in tests and in a plain browser) and the live sync status.
import { getContext, setContext } from "svelte";
import type { FieldBackend } from "../lib/api/field-types";
import { SyncStore } from "./sync.svelte";

const BACKEND = Symbol("wardcheck-field-backend");
const SYNC = Symbol("wardcheck-field-sync");

/** The context entries for `backend`: set by the app, passed to `render` by tests. */
export function fieldContext(backend: FieldBackend, sync = new SyncStore(backend)): Map<symbol, unknown> {
  return new Map<symbol, unknown>([
    [BACKEND, backend],
    [SYNC, sync],
  ]);
}

/** Sets the entries of `fieldContext` on the calling component. */
export function provide(entries: Map<symbol, unknown>): void {
  for (const [k, v] of entries) setContext(k, v);
}

export function useBackend(): FieldBackend {
  const b = getContext<FieldBackend | undefined>(BACKEND);
  if (!b) throw new Error("no field backend in context");
  return b;
}

export function useSync(): SyncStore {
  const s = getContext<SyncStore | undefined>(SYNC);
  if (!s) throw new Error("no sync status in context");
  return s;
}
