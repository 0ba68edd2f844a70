// The field app's entry: the Tauri shell's commands, or, on Vite's dev server in a plain
// browser, an in-memory stand-in with sample data.
import "nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css";
import "../app.css";
import "./field.css";
import { isTauri } from "@tauri-apps/api/core";
import { mount } from "svelte";
import type { FieldBackend } from "../lib/api/field-types";
import { TauriBackend } from "../lib/api/tauri";
import FieldApp from "./FieldApp.svelte";

async function backend(): Promise<FieldBackend | null> {
  if (isTauri()) return new TauriBackend();
  if (import.meta.env.DEV) {
    // `?signed-out` and `?keystore=unavailable` show those screens.
    const q = new URLSearchParams(location.search);
    const keystore = q.get("keystore") === "unavailable" ? "unavailable" : "test";
    return new (await import("./dev/memory")).MemoryBackend({ signedIn: !q.has("signed-out"), keystore });
  }
  return null;
}

const target = document.getElementById("app")!;
backend().then((b) => {
  if (b) mount(FieldApp, { target, props: { backend: b } });
  else target.textContent = "This is the Wardcheck field app: it runs inside the Wardcheck application.";
});
