import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { INSPECTION, context, fakeBackend, openInspection } from "../test/setup";
import Devices from "./Devices.svelte";

describe("the sampled devices form", () => {
  it("needs a host name and a build, adds the device, then offers the checklist's device checks", async () => {
    const { backend, spies } = fakeBackend();
    const store = await openInspection(backend);
    const { rerender } = render(Devices, { props: { store, selected: null }, context: context(backend) });
    expect(screen.queryAllByTestId("device-row")).toHaveLength(0);

    await fireEvent.click(screen.getByTestId("device-add"));
    await fireEvent.click(screen.getByTestId("device-save"));
    expect(spies.addDevice).not.toHaveBeenCalled();
    expect(screen.getByText(/Enter the device's host name/)).toBeTruthy();
    expect(screen.getByText(/Enter the Windows build/)).toBeTruthy();

    await fireEvent.input(screen.getByTestId("device-hostname"), { target: { value: " RJ121-WS-0423 " } });
    await fireEvent.input(screen.getByTestId("device-build"), { target: { value: "19045.4291" } });
    await fireEvent.click(screen.getByTestId("device-save"));
    await vi.waitFor(() => expect(spies.addDevice).toHaveBeenCalledWith(INSPECTION, "RJ121-WS-0423", "19045.4291"));
    const row = await vi.waitFor(() => screen.getByTestId("device-row"));
    expect(row.textContent).toContain("RJ121-WS-0423");
    expect(row.textContent).toContain("19045.4291");

    // The checks come from the checklist's device-scope items (the Windows 10 endpoint checks).
    const device = store.view!.devices[0].id;
    await vi.waitFor(() => expect(location.hash).toBe(`#/i/${INSPECTION}/devices/${device}`));
    await rerender({ store, selected: device });
    const deviceItems = store.deviceSections.flatMap((s) => s.items).filter((i) => i.scope === "device");
    expect(deviceItems.length).toBeGreaterThan(10);
    const checks = screen.getAllByTestId("device-check");
    expect(checks.map((c) => c.dataset.item)).toEqual(deviceItems.map((i) => i.id));

    // A text check (the build) takes text; a compliance check takes the buttons.
    const build = checks.find((c) => c.dataset.item === "w10-os-build")!;
    expect(within(build).getByTestId("answer-value")).toBeTruthy();
    const supported = checks.find((c) => c.dataset.item === "w10-os-supported")!;
    await fireEvent.click(within(supported).getByTestId("answer-not-met"));
    await vi.waitFor(() =>
      expect(spies.recordObservation).toHaveBeenCalledWith(INSPECTION, device, "w10-os-supported", { kind: "not-met" }, ""),
    );
    await vi.waitFor(() => expect(screen.getByTestId("device-row").textContent).toContain(`1 of ${deviceItems.length}`));
  });
});
