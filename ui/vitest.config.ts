// Component tests (`npm test`): Svelte components rendered into jsdom with a fake
// backend behind the same FieldBackend interface the Tauri shell implements.
import { defineConfig } from "vitest/config";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { svelteTesting } from "@testing-library/svelte/vite";

// Times in the tests ("Synced at 14:32") are read in UTC wherever the tests run.
process.env.TZ = "UTC";

export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
  },
});
