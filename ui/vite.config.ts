import { defineConfig, type Plugin } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { fileURLToPath } from "node:url";

const nhsukImages = fileURLToPath(new URL("./node_modules/nhsuk-frontend/dist/nhsuk/assets/images/", import.meta.url));

/**
 * nhsuk-frontend's compiled CSS loads the Frutiger font from assets.nhs.uk and its icons
 * from `/assets/images/`. The dashboard's Content-Security-Policy allows no remote
 * origin, so the remote @font-face rules are dropped (the NHS font stack falls back to
 * Arial, as it does wherever Frutiger is not licensed), the icons are taken from the
 * package so Vite bundles them with hashed names, and an old Internet Explorer hack goes.
 */
function nhsukCssForOurCsp(): Plugin {
  return {
    name: "wardcheck-nhsuk-css",
    enforce: "pre",
    transform(code, id) {
      if (!id.includes("nhsuk-frontend") || !id.split("?")[0].endsWith(".css")) return null;
      const css = code
        .replace(/@font-face\s*\{[^}]*https?:[^}]*\}/g, "")
        // `@media screen\0` is a hack that only old Internet Explorer matched, and
        // Vite's CSS minifier refuses it: it never applies, so say so.
        .replace(/@media screen\\0/g, "@media not all")
        .replace(/url\(\s*["']?\/assets\/images\/([\w.-]+)["']?\s*\)/g, (_m, file) => `url("${nhsukImages}${file}")`);
      return { code: css, map: null };
    },
  };
}

export default defineConfig({
  plugins: [nhsukCssForOurCsp(), svelte()],
  build: {
    // Served by wardcheck-server with a CSP that forbids inline script: never inline.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
  },
  server: {
    // `npm run dev`: the API from a server started with `wardcheck-server serve`.
    proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } },
  },
});
