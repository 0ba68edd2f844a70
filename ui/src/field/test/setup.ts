// What the component tests share: a fake backend (the in-memory one, with spies), an
// inspection opened through it, and the context the components read.
import { vi } from "vitest";
import { MemoryBackend, type MemoryOptions } from "../dev/memory";
import { fieldContext } from "../context";
import { InspectionStore } from "../inspection/store.svelte";
import { SyncStore } from "../sync.svelte";

export const INSPECTION = "11111111-1111-4111-8111-111111111111";

/** A fake backend whose every command is a spy over the in-memory implementation. */
export function fakeBackend(opts: MemoryOptions = {}) {
  const backend = new MemoryBackend(opts);
  const spies = {
    setAnswer: vi.spyOn(backend, "setAnswer"),
    editNote: vi.spyOn(backend, "editNote"),
    addPhoto: vi.spyOn(backend, "addPhoto"),
    addDevice: vi.spyOn(backend, "addDevice"),
    recordObservation: vi.spyOn(backend, "recordObservation"),
    resolveConflict: vi.spyOn(backend, "resolveConflict"),
    signIn: vi.spyOn(backend, "signIn"),
  };
  return { backend, spies };
}

export async function openInspection(backend: MemoryBackend, id = INSPECTION) {
  const store = new InspectionStore(backend, id);
  await store.load();
  if (!store.view) throw new Error(`inspection ${id} did not open: ${store.error?.message}`);
  return store;
}

export function context(backend: MemoryBackend, sync = new SyncStore(backend)) {
  return fieldContext(backend, sync);
}
