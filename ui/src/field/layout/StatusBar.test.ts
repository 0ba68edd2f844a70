import { render, screen } from "@testing-library/svelte";
import { tick } from "svelte";
import { describe, expect, it } from "vitest";
import { SyncStore } from "../sync.svelte";
import { context, fakeBackend } from "../test/setup";
import StatusBar from "./StatusBar.svelte";

const MB = 1024 * 1024;

async function bar(opts = {}) {
  const { backend } = fakeBackend(opts);
  const sync = new SyncStore(backend);
  await sync.start();
  render(StatusBar, { context: context(backend, sync) });
  return { backend, sync };
}

describe("the status bar", () => {
  it("shows a change the server refused, and takes the server's copy when asked", async () => {
    const { backend } = await bar();
    expect(screen.queryByTestId("refused")).toBeNull();
    backend.emit({
      state: "syncing",
      refused: [{ document: "d1", inspection: "i1", code: "wrong_state", message: "answers cannot change while the inspection is submitted" }],
    });
    await tick();
    const r = screen.getByTestId("refused");
    expect(r.dataset.code).toBe("wrong_state");
    expect(r.textContent).toContain("inspection i1");
    expect(r.textContent).toContain("answers cannot change while the inspection is submitted");
    screen.getByTestId("take-servers-copy").click();
    await new Promise((ok) => setTimeout(ok, 0));
    await tick();
    expect(screen.queryByTestId("refused")).toBeNull();
  });

  it("says Offline, Syncing, Synced at HH:MM and Not signed in as the worker reports", async () => {
    const { backend } = await bar();
    expect(screen.getByTestId("sync-status").textContent).toContain("Offline");

    backend.emit({ state: "syncing" });
    await tick();
    expect(screen.getByTestId("sync-status").textContent).toContain("Syncing");

    backend.emit({ state: "synced", last_synced_at: "2026-11-29T14:32:05Z" });
    await tick();
    expect(screen.getByTestId("sync-status").textContent?.trim()).toBe("Synced at 14:32");

    backend.emit({ state: "signed_out" });
    await tick();
    expect(screen.getByTestId("sync-status").textContent).toContain("Not signed in");
  });

  it("counts what is only on this device", async () => {
    const { backend } = await bar();
    backend.emit({ pending_changes: 7, pending_photos: 3, pending_photo_bytes: 12 * MB });
    await tick();
    expect(screen.getByTestId("pending").textContent).toBe("7 changes and 3 photos not yet on the server");

    backend.emit({ pending_changes: 1, pending_photos: 1 });
    await tick();
    expect(screen.getByTestId("pending").textContent).toBe("1 change and 1 photo not yet on the server");

    backend.emit({ pending_changes: 0, pending_photos: 0, pending_photo_bytes: 0 });
    await tick();
    expect(screen.getByTestId("pending").textContent).toBe("0 changes and 0 photos not yet on the server");
  });

  it("shows photo uploads as a progress bar with photos and megabytes", async () => {
    const { backend } = await bar();
    expect(screen.queryByTestId("upload-progress")).toBeNull();

    backend.emit({
      state: "syncing",
      pending_photos: 9,
      upload: { done_photos: 3, total_photos: 12, done_bytes: 18 * MB, total_bytes: 41 * MB },
    });
    await tick();
    expect(screen.getByTestId("upload-text").textContent).toBe("3 of 12 photos, 18 of 41 MB");
    const progress = screen.getByTestId("upload-progress") as HTMLProgressElement;
    expect(progress.value).toBe(18 * MB);
    expect(progress.max).toBe(41 * MB);

    backend.emit({ state: "synced", last_synced_at: "2026-11-29T14:40:00Z", upload: null });
    await tick();
    expect(screen.queryByTestId("upload-progress")).toBeNull();
  });

  it("keeps an event that arrives before the first answer to sync_status", async () => {
    const { backend } = fakeBackend();
    const sync = new SyncStore(backend);
    const asked = backend.syncStatus.bind(backend);
    backend.syncStatus = async () => {
      const stale = await asked();
      backend.emit({ state: "syncing" });
      return stale;
    };
    await sync.start();
    render(StatusBar, { context: context(backend, sync) });
    expect(screen.getByTestId("sync-status").textContent).toContain("Syncing");
  });
});
