// Builds Herald's web app into ../static/app, which the Go binary embeds
// (server/webui): the operator console (console.html, served at /console),
// the customer portal (portal.html, at /portal/<app id>) and the page a
// refused portal frame shows (portal-refused.html). They share one design
// system and their common code; each page loads only what it uses. The
// build is committed and reproducible: `make assets` rebuilds it, and CI
// checks that the committed files match.
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  // The pages are served at /console and /portal/…; assets under /static/app/.
  base: "/static/app/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  resolve: {
    alias: { react: "preact/compat", "react-dom": "preact/compat" },
  },
  build: {
    // build.sh builds in a temporary copy and names the real output.
    outDir: process.env.HERALD_PORTAL_OUT || "../static/app",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2020",
    sourcemap: false,
    // Every supported browser preloads modules itself; the polyfill
    // would only add code.
    modulePreload: { polyfill: false },
    rollupOptions: { input: { console: "console.html", portal: "portal.html", "portal-refused": "portal-refused.html" } },
  },
});
