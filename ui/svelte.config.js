import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

export default {
  preprocess: vitePreprocess(),
  compilerOptions: {
    // Component styles go to the CSS file, never inline: the CSP has no 'unsafe-inline'.
    css: "external",
  },
};
