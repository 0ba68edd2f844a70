// The field app's build: field.html into dist-field/, which the Tauri shell embeds and
// serves under a strict Content-Security-Policy (no inline script or style, no remote
// origin). `npm run build` runs this after the dashboard's build (vite.config.ts).
import { defineConfig, mergeConfig, type Plugin } from "vite";
import dashboard from "./vite.config.ts";

/** Tauri serves `index.html`: the entry is renamed on its way out. */
function entryAsIndex(): Plugin {
  return {
    name: "wardcheck-field-index",
    apply: "build",
    enforce: "post",
    generateBundle(_options, bundle) {
      const html = bundle["field.html"];
      if (!html || html.type !== "asset") return;
      delete bundle["field.html"];
      this.emitFile({ type: "asset", fileName: "index.html", source: html.source });
    },
  };
}

export default mergeConfig(
  dashboard,
  defineConfig({
    // Relative asset URLs: the page is served from the app's own protocol, not a server root.
    base: "./",
    plugins: [entryAsIndex()],
    build: {
      outDir: "dist-field",
      emptyOutDir: true,
      rollupOptions: { input: "field.html" },
    },
    server: {
      // `npm run dev:field`: the field app in a plain browser, on sample data in memory.
      port: 5174,
    },
  }),
);
