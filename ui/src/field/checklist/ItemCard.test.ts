import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { AppError } from "../../lib/api/field-types";
import type { MemoryBackend } from "../dev/memory";
import { INSPECTION, context, fakeBackend, openInspection } from "../test/setup";
import { SyncStore } from "../sync.svelte";
import ItemCard from "./ItemCard.svelte";

async function card(before?: (backend: MemoryBackend, item: string) => void) {
  const { backend, spies } = fakeBackend({ conflict: false });
  before?.(backend, backend.checklist.sections[0].items[1].id);
  const store = await openInspection(backend);
  const item = store.inspectionSections[0].items[1];
  const sync = new SyncStore(backend);
  await sync.start();
  render(ItemCard, { props: { store, item }, context: context(backend, sync) });
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

  it("shows a photo another device took as on the server, with its hash, not as an error", async () => {
    const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const { backend, q } = await card((b, item) => b.photoFromAnotherDevice(INSPECTION, item, sha));
    const thumb = q.getByTestId("photo-thumb");
    expect(thumb.dataset.sha256).toBe(sha);
    // The shell answers not_found until it has fetched the photo from the server.
    await expect(backend.photoThumbnail(sha)).rejects.toMatchObject({ code: "not_found" });
    const placeholder = await vi.waitFor(() => within(thumb).getByTestId("photo-remote"));
    expect(placeholder.textContent).toContain("Photo on the server, not yet on this device");
    expect(placeholder.textContent).toContain(sha);
    expect(thumb.querySelector("img")).toBeNull();
    expect(thumb.textContent).not.toContain("No thumbnail");
    expect(q.queryByRole("alert")).toBeNull();

    // The shell fetches it: the placeholder gives way to the thumbnail, unasked.
    backend.photoArrives(sha, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    await vi.waitFor(() => expect(thumb.querySelector("img")?.getAttribute("src")).toMatch(/^data:image\/jpeg;base64,/));
    expect(within(thumb).queryByTestId("photo-remote")).toBeNull();
  });

  it("says 'No thumbnail' when the shell fails for another reason", async () => {
    const sha = "a".repeat(64);
    const { q } = await card((b, item) => {
      b.photoFromAnotherDevice(INSPECTION, item, sha);
      vi.spyOn(b, "photoThumbnail").mockRejectedValue(new AppError("storage", "The photo store could not be read."));
    });
    const thumb = q.getByTestId("photo-thumb");
    await vi.waitFor(() => expect(thumb.textContent).toContain("No thumbnail"));
    expect(within(thumb).queryByTestId("photo-remote")).toBeNull();
  });

  it("takes the answer's kind and bounds from the checklist the shell sent", async () => {
    const { backend } = fakeBackend({ conflict: false });
    const store = await openInspection(backend);
    // The shell's checklist, not the copy bundled into the UI, says how an item is answered.
    const item = { ...store.inspectionSections[0].items[0] };
    item.answer = { kind: "number", min: 0, max: 100, unit: "%" };
    store.checklist = {
      ...store.checklist!,
      sections: store.checklist!.sections.map((s, i) => (i === 0 ? { ...s, items: [item, ...s.items.slice(1)] } : s)),
    };
    expect(store.answerSpec(item.id)).toEqual({ kind: "number", unit: "%", min: 0, max: 100 });
    render(ItemCard, { props: { store, item }, context: context(backend) });
    const q = within(screen.getByTestId("item"));
    expect(q.queryByTestId("answer-met")).toBeNull();
    expect(q.getByLabelText("Number (%)")).toBeTruthy();
    await fireEvent.input(q.getByTestId("answer-value"), { target: { value: "101" } });
    await fireEvent.click(q.getByTestId("answer-save"));
    expect(q.getByText("Enter a number from 0 to 100")).toBeTruthy();
  });

  it("refuses a photo over 25 MB before reading or sending it", async () => {
    const { spies, q } = await card();
    const input = q.getByTestId("photo-input") as HTMLInputElement;
    const file = new File([new Uint8Array([0xff, 0xd8])], "huge.jpg", { type: "image/jpeg" });
    Object.defineProperty(file, "size", { value: 26_214_401 });
    // jsdom's File has no arrayBuffer(): the field reads through FileReader there.
    const read = vi.spyOn(FileReader.prototype, "readAsArrayBuffer");
    Object.defineProperty(input, "files", { value: [file], configurable: true });
    await fireEvent.change(input);
    await vi.waitFor(() => expect(q.getByText(/huge\.jpg is 25\.0 MB \(26,214,401 bytes\): a photo may be at most 25 MB/)).toBeTruthy());
    expect(read).not.toHaveBeenCalled();
    expect(spies.addPhoto).not.toHaveBeenCalled();
    read.mockRestore();
  });
});
