import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { INSPECTION, context, fakeBackend, openInspection } from "../test/setup";
import Findings from "./Findings.svelte";

describe("the findings screen", () => {
  it("needs a severity and a text, then records the finding with the items it rests on", async () => {
    const { backend } = fakeBackend();
    const addFinding = vi.spyOn(backend, "addFinding");
    const store = await openInspection(backend);
    render(Findings, { props: { store }, context: context(backend) });

    await fireEvent.click(screen.getByTestId("finding-add"));
    await fireEvent.click(screen.getByTestId("finding-save"));
    expect(addFinding).not.toHaveBeenCalled();
    expect(screen.getAllByText("Choose how severe the finding is").length).toBeGreaterThan(0);

    const severity = screen.getByTestId("finding-severity") as HTMLSelectElement;
    severity.value = "high";
    await fireEvent.change(severity);
    await fireEvent.input(screen.getByTestId("finding-text"), { target: { value: "Unsupported Windows builds on ward PCs" } });
    const items = screen.getByTestId("finding-items") as HTMLSelectElement;
    for (const o of items.options) o.selected = o.value === "w10-os-supported" || o.value === "ndg8-no-unsupported";
    await fireEvent.change(items);
    await fireEvent.input(screen.getByTestId("finding-recommendation"), { target: { value: "Upgrade or enrol in ESU" } });
    await fireEvent.click(screen.getByTestId("finding-save"));

    await vi.waitFor(() =>
      expect(addFinding).toHaveBeenCalledWith(
        INSPECTION,
        "high",
        "Unsupported Windows builds on ward PCs",
        ["ndg8-no-unsupported", "w10-os-supported"],
        "Upgrade or enrol in ESU",
      ),
    );
    const row = await vi.waitFor(() => screen.getByTestId("finding-row"));
    expect(row.textContent).toContain("High");
    expect(row.textContent).toContain("Upgrade or enrol in ESU");
    expect(row.textContent).toContain(store.prompt("w10-os-supported"));
  });
});
