import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { MemoryBackend } from "./dev/memory";
import FieldApp from "./FieldApp.svelte";

describe("the field app", () => {
  it("shows only why, when there is no keychain", async () => {
    const backend = new MemoryBackend({ keystore: "unavailable" });
    const listed = vi.spyOn(backend, "listInspections");
    render(FieldApp, { props: { backend } });
    const error = await vi.waitFor(() => screen.getByTestId("keystore-error"));
    expect(error.textContent).toContain("No Secret Service provider answered");
    expect(screen.queryByTestId("sync-status")).toBeNull();
    expect(screen.queryByTestId("signin-submit")).toBeNull();
    expect(listed).not.toHaveBeenCalled();
  });

  it("signs in, then lists the inspections on this device, with the status bar throughout", async () => {
    const backend = new MemoryBackend({ signedIn: false });
    render(FieldApp, { props: { backend } });
    await vi.waitFor(() => expect(screen.getByTestId("sync-status").textContent).toContain("Not signed in"));
    expect(screen.getByTestId("test-keystore")).toBeTruthy();

    await fireEvent.input(screen.getByTestId("signin-server"), { target: { value: "http://127.0.0.1:8080" } });
    await fireEvent.input(screen.getByTestId("signin-user"), { target: { value: "ann" } });
    await fireEvent.input(screen.getByTestId("signin-password"), { target: { value: "password" } });
    await fireEvent.click(screen.getByTestId("signin-submit"));

    const rows = await vi.waitFor(() => {
      const r = screen.getAllByTestId("inspection-row");
      expect(r.length).toBe(2);
      return r;
    });
    expect(rows[0].dataset.id).toBe("11111111-1111-4111-8111-111111111111");
    expect(rows[0].textContent).toContain("RJ1");
    expect(screen.getByTestId("sync-status").textContent).toContain("Offline");
    expect(screen.getByTestId("pending").textContent).toBe("0 changes and 0 photos not yet on the server");
  });
});
