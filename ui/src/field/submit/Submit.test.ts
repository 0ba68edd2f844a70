import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { context, fakeBackend, openInspection } from "../test/setup";
import Submit from "./Submit.svelte";

async function submitted(role: string) {
  const { backend } = fakeBackend({ conflict: false });
  backend.status.signed_in!.role = role;
  const store = await openInspection(backend);
  await store.submit();
  render(Submit, { props: { store }, context: context(backend) });
  return store;
}

describe("signing off", () => {
  it("signs as lead inspector for an inspector", async () => {
    const store = await submitted("inspector");
    await vi.waitFor(() => screen.getByLabelText("Lead inspector's sign-off statement"));
    await fireEvent.click(screen.getByTestId("signoff"));
    await vi.waitFor(() => expect(store.view?.signoffs.map((s) => s.role)).toEqual(["lead_inspector"]));
    await vi.waitFor(() => expect(screen.queryByTestId("signoff")).toBeNull());
    expect(screen.getByTestId("signoff-row").textContent).toContain("lead inspector");
  });

  it("says a reviewer signs as reviewer, and offers no second sign-off", async () => {
    const store = await submitted("reviewer");
    await vi.waitFor(() => screen.getByLabelText("Reviewer's sign-off statement"));
    expect(screen.getByText("You sign off as reviewer.")).toBeTruthy();
    await fireEvent.click(screen.getByTestId("signoff"));
    await vi.waitFor(() => expect(store.view?.signoffs.map((s) => s.role)).toEqual(["reviewer"]));
    await vi.waitFor(() => expect(screen.queryByTestId("signoff")).toBeNull());
    await vi.waitFor(() => expect(screen.getAllByText("Signed off as reviewer.").length).toBeGreaterThan(0));
  });
});
