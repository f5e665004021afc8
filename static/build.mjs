// Bundles Lhama's ES modules (static/src/*.js) and the npm packages they import
// into static/dist/. Run by `make` (npm run build); the output is never committed.
import { build } from "esbuild";
import { readdirSync, mkdirSync, copyFileSync } from "node:fs";

const entries = readdirSync("static/src").filter((f) => f.endsWith(".js")).map((f) => `static/src/${f}`);
mkdirSync("static/dist", { recursive: true });
await build({
  entryPoints: entries,
  bundle: true,
  format: "esm",
  splitting: true,
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  outdir: "static/dist",
  logLevel: "info",
});
// Stylesheets shipped by packages (code highlighting theme, chart styles).
copyFileSync("node_modules/highlight.js/styles/github.css", "static/dist/highlight.css");
copyFileSync("node_modules/highlight.js/styles/github-dark.css", "static/dist/highlight-dark.css");
copyFileSync("node_modules/uplot/dist/uPlot.min.css", "static/dist/uplot.css");
