import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { INSPECTION, context, fakeBackend, openInspection } from "../test/setup";
import Conflicts from "./Conflicts.svelte";

describe("the conflicts screen", () => {
  it("shows every value with author and time, and resolves with the one picked", async () => {
    const { backend, spies } = fakeBackend({ conflict: true });
    const store = await openInspection(backend);
    const item = store.inspectionSections[0].items[0].id;
    render(Conflicts, { props: { store }, context: context(backend) });

    const conflict = screen.getByTestId("conflict");
    expect(conflict.dataset.field).toBe(`answer:${item}`);
    const picks = within(conflict).getAllByTestId("conflict-pick");
    expect(picks.map((p) => p.dataset.candidate)).toEqual(["7@aaaa", "7@bbbb"]);
    expect(conflict.textContent).toContain("Met");
    expect(conflict.textContent).toContain("Not met");
    expect(conflict.textContent).toContain("ann");
    expect(conflict.textContent).toContain("rev");

    // The reviewer's "not met" is kept.
    await fireEvent.click(picks[1]);
    await vi.waitFor(() =>
      expect(spies.resolveConflict).toHaveBeenCalledWith(INSPECTION, { field: "answer", item }, "7@bbbb"),
    );
    await vi.waitFor(() => expect(screen.queryByTestId("conflict")).toBeNull());
    expect(screen.getByTestId("no-conflicts")).toBeTruthy();
    expect(store.view?.responses[item].answer?.values.map((v) => v.value)).toEqual([{ kind: "not-met" }]);
  });
});
