import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { INSPECTION, context, fakeBackend, openInspection } from "../test/setup";
import ItemCard from "./ItemCard.svelte";

async function card() {
  const { backend, spies } = fakeBackend({ conflict: false });
  const store = await openInspection(backend);
  const item = store.inspectionSections[0].items[1];
  render(ItemCard, { props: { store, item }, context: context(backend) });
  const root = screen.getByTestId("item");
  return { backend, spies, store, item, root, q: within(root) };
}

describe("a checklist item", () => {
  it("shows its prompt, guidance and answer buttons", async () => {
    const { item, root, q } = await card();
    expect(root.dataset.item).toBe(item.id);
    expect(q.getByRole("heading", { name: item.prompt })).toBeTruthy();
    expect(root.textContent).toContain(item.guidance);
    for (const id of ["answer-met", "answer-partly-met", "answer-not-met", "answer-not-applicable"]) {
      expect(q.getByTestId(id).tagName).toBe("BUTTON");
    }
  });

  it("records met at once", async () => {
    const { spies, item, q } = await card();
    await fireEvent.click(q.getByTestId("answer-met"));
    await vi.waitFor(() => expect(spies.setAnswer).toHaveBeenCalledWith(INSPECTION, item.id, { kind: "met" }));
    await vi.waitFor(() => expect(q.getByTestId("answer-met").getAttribute("aria-pressed")).toBe("true"));
    expect(q.getByTestId("answer-current").textContent).toContain("Met");
  });

  it("asks for a reason before recording not applicable", async () => {
    const { spies, item, q } = await card();
    expect(q.queryByTestId("na-reason")).toBeNull();

    await fireEvent.click(q.getByTestId("answer-not-applicable"));
    expect(spies.setAnswer).not.toHaveBeenCalled();
    const reason = q.getByTestId("na-reason") as HTMLTextAreaElement;

    // No reason: nothing is saved, and the field says why.
    await fireEvent.click(q.getByTestId("na-save"));
    expect(spies.setAnswer).not.toHaveBeenCalled();
    expect(q.getByText("Enter why this item does not apply")).toBeTruthy();

    await fireEvent.input(reason, { target: { value: "  The trust has no paper records  " } });
    await fireEvent.click(q.getByTestId("na-save"));
    await vi.waitFor(() =>
      expect(spies.setAnswer).toHaveBeenCalledWith(INSPECTION, item.id, {
        kind: "not-applicable",
        reason: "The trust has no paper records",
      }),
    );
    await vi.waitFor(() => expect(q.queryByTestId("na-reason")).toBeNull());
    expect(q.getByTestId("answer-current").textContent).toContain("Not applicable: The trust has no paper records");
  });

  it("saves the note when the field loses focus", async () => {
    const { spies, item, q } = await card();
    const note = q.getByTestId("note");
    await fireEvent.focus(note);
    await fireEvent.input(note, { target: { value: "Register seen, dated March" } });
    await fireEvent.blur(note);
    await vi.waitFor(() => expect(spies.editNote).toHaveBeenCalledWith(INSPECTION, item.id, "Register seen, dated March"));
    expect(spies.editNote).toHaveBeenCalledTimes(1);
  });

  it("sends a chosen photo's bytes and shows its thumbnail", async () => {
    const { spies, item, q } = await card();
    const input = q.getByTestId("photo-input") as HTMLInputElement;
    expect(input.accept).toBe("image/*");
    expect(input.getAttribute("capture")).toBe("environment");
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const file = new File([bytes], "ward.jpg", { type: "image/jpeg" });
    Object.defineProperty(input, "files", { value: [file], configurable: true });
    await fireEvent.change(input);
    await vi.waitFor(() => expect(spies.addPhoto).toHaveBeenCalled());
    const [id, it, name, sent] = spies.addPhoto.mock.calls[0];
    expect([id, it, name]).toEqual([INSPECTION, item.id, "ward.jpg"]);
    expect([...sent]).toEqual([...bytes]);
    const thumb = await vi.waitFor(() => q.getByTestId("photo-thumb"));
    expect(thumb.dataset.sha256).toMatch(/^[0-9a-f]{64}$/);
    await vi.waitFor(() => expect(thumb.querySelector("img")?.getAttribute("src")).toMatch(/^data:image\/jpeg;base64,/));
  });
});
