import { render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { SyncStore } from "../sync.svelte";
import { INSPECTION, context, fakeBackend } from "../test/setup";
import InspectionPage from "./InspectionPage.svelte";

/** Another person's concurrent answer to the first item, as a sync stores it. */
function conflictArrives(backend: ReturnType<typeof fakeBackend>["backend"], by: string, kind: "partly-met" | "not-met"): string {
  const view = backend.views.get(INSPECTION)!;
  const item = Object.keys(view.responses)[0];
  view.responses[item].answer = {
    values: [
      { id: "9@a", value: { kind: "met" }, by: "ann", at: "2026-11-29T10:00:00Z" },
      { id: "9@b", value: { kind }, by, at: "2026-11-29T10:00:01Z" },
    ],
  };
  view.conflicts = [{ field: "answer", item }];
  return item;
}

describe("an open inspection", () => {
  it("reads the inspection again after a sync, so another person's conflicting answer shows", async () => {
    const { backend } = fakeBackend({ conflict: false });
    const sync = new SyncStore(backend);
    await sync.start();
    render(InspectionPage, { props: { id: INSPECTION, tab: "conflicts", sub: null }, context: context(backend, sync) });
    await vi.waitFor(() => screen.getByTestId("no-conflicts"));

    // A reviewer's concurrent answer arrives with the sync.
    const item = conflictArrives(backend, "rev", "partly-met");
    backend.emit({ state: "synced", last_synced_at: "2026-11-29T10:01:00Z" });

    const conflict = await vi.waitFor(() => screen.getByTestId("conflict"));
    expect(conflict.dataset.field).toBe(`answer:${item}`);
    expect(screen.getByTestId("tab-conflicts").textContent).toContain("1");
  });

  it("reads it again when the shell stored another person's change while already synced", async () => {
    const { backend } = fakeBackend({ conflict: false });
    backend.emit({ state: "synced", last_synced_at: "2026-11-29T10:00:00Z" });
    const sync = new SyncStore(backend);
    await sync.start();
    render(InspectionPage, { props: { id: INSPECTION, tab: "conflicts", sub: null }, context: context(backend, sync) });
    await vi.waitFor(() => screen.getByTestId("no-conflicts"));

    // A co-inspector's answer arrives: the state stays "synced" and "synced at" does
    // not move; only `changes_received` does.
    const item = conflictArrives(backend, "bo", "not-met");
    backend.emit({ changes_received: 1 });

    const conflict = await vi.waitFor(() => screen.getByTestId("conflict"));
    expect(conflict.dataset.field).toBe(`answer:${item}`);
  });
});
