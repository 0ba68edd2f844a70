import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { Answer } from "../../lib/api/types";
import AnswerInput from "./AnswerInput.svelte";

describe("a typed answer", () => {
  it("saves a number, and refuses what is not one", async () => {
    const save = vi.fn(async (_a: Answer) => {});
    render(AnswerInput, { props: { answer: null, spec: { kind: "number", unit: "%" }, save, uid: "t" } });
    expect(screen.getByLabelText("Number (%)")).toBeTruthy();
    await fireEvent.input(screen.getByTestId("answer-value"), { target: { value: "ninety" } });
    await fireEvent.click(screen.getByTestId("answer-save"));
    expect(save).not.toHaveBeenCalled();
    expect(screen.getByText("Enter a number, like 95")).toBeTruthy();
    await fireEvent.input(screen.getByTestId("answer-value"), { target: { value: "94.5" } });
    await fireEvent.click(screen.getByTestId("answer-save"));
    await vi.waitFor(() => expect(save).toHaveBeenCalledWith({ kind: "number", value: 94.5 }));
  });

  it("offers not applicable, with its reason, for a text answer too", async () => {
    const save = vi.fn(async (_a: Answer) => {});
    render(AnswerInput, { props: { answer: null, spec: { kind: "text", unit: null }, save, uid: "t" } });
    await fireEvent.click(screen.getByTestId("answer-not-applicable"));
    await fireEvent.input(screen.getByTestId("na-reason"), { target: { value: "Kiosk device, no desktop" } });
    await fireEvent.click(screen.getByTestId("na-save"));
    await vi.waitFor(() => expect(save).toHaveBeenCalledWith({ kind: "not-applicable", reason: "Kiosk device, no desktop" }));
  });
});
