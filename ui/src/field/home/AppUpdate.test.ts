import { render, screen } from "@testing-library/svelte";
import { tick } from "svelte";
import { describe, expect, it, vi } from "vitest";
import { AppError } from "../../lib/api/field-types";
import { context, fakeBackend } from "../test/setup";
import AppUpdate from "./AppUpdate.svelte";

async function settle() {
  await new Promise((ok) => setTimeout(ok, 0));
  await tick();
}

describe("the app update panel", () => {
  it("offers a newer version only when asked, and says when its signature was refused", async () => {
    const { backend } = fakeBackend();
    const check = vi
      .spyOn(backend, "updateCheck")
      .mockResolvedValue({ current: "0.1.0", available: { version: "0.1.1", notes: "Fixes photos", date: null } });
    const install = vi
      .spyOn(backend, "updateInstall")
      .mockRejectedValueOnce(new AppError("update_refused", "Its signature does not hold under this app's release key."))
      .mockResolvedValueOnce({ version: "0.1.1", bytes: 31_000_000, restart_needed: true });
    render(AppUpdate, { context: context(backend) });
    expect(check).not.toHaveBeenCalled();
    expect(screen.queryByTestId("update-install")).toBeNull();

    screen.getByTestId("update-check").click();
    await settle();
    expect(screen.getByTestId("update-status").textContent?.trim()).toBe(
      "Version 0.1.1 is available (this is 0.1.0). Fixes photos",
    );

    screen.getByTestId("update-install").click();
    await settle();
    expect(install).toHaveBeenCalledWith("0.1.1");
    expect(screen.getByTestId("update-status").textContent?.trim()).toMatch(/^Update refused: Its signature does not hold/);

    // Asked again, and installed.
    screen.getByTestId("update-check").click();
    await settle();
    screen.getByTestId("update-install").click();
    await settle();
    expect(screen.getByTestId("update-status").textContent).toContain("Version 0.1.1 is installed (31.0 MB, signature checked).");
    expect(screen.getByTestId("update-status").textContent).toContain("start it again");
    expect(screen.queryByTestId("update-install")).toBeNull();
  });

  it("says when the server offers nothing newer", async () => {
    const { backend } = fakeBackend();
    await backend.signIn("http://127.0.0.1:8080", "ann", "password");
    render(AppUpdate, { context: context(backend) });
    screen.getByTestId("update-check").click();
    await settle();
    expect(screen.getByTestId("update-status").textContent).toContain("is the newest the server offers");
  });
});
