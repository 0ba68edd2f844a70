import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { context, fakeBackend } from "../test/setup";
import SignIn from "./SignIn.svelte";

describe("signing in", () => {
  it("sends the server, user and password, and says when they are wrong", async () => {
    const { backend, spies } = fakeBackend({ signedIn: false });
    const signedIn = vi.fn();
    render(SignIn, { props: { signedIn }, context: context(backend) });

    await fireEvent.input(screen.getByTestId("signin-server"), { target: { value: "http://127.0.0.1:8080/" } });
    await fireEvent.input(screen.getByTestId("signin-user"), { target: { value: "ann" } });
    await fireEvent.input(screen.getByTestId("signin-password"), { target: { value: "wrong" } });
    await fireEvent.click(screen.getByTestId("signin-submit"));
    await vi.waitFor(() => expect(spies.signIn).toHaveBeenCalledWith("http://127.0.0.1:8080", "ann", "wrong"));
    await vi.waitFor(() => expect(screen.getByRole("alert").textContent).toContain("user name or password is wrong"));
    expect(signedIn).not.toHaveBeenCalled();

    await fireEvent.input(screen.getByTestId("signin-password"), { target: { value: "password" } });
    await fireEvent.click(screen.getByTestId("signin-submit"));
    await vi.waitFor(() => expect(signedIn).toHaveBeenCalled());
    expect(signedIn.mock.calls[0][0].signed_in.user).toBe("ann");
  });
});
