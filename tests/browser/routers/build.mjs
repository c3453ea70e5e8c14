// Build one of the router test apps (tests/browser/test_routers.py) with esbuild, the way
// an app's bundler does, with spa-version wired by docs/js.md's recipe for that router.
//
//   node build.mjs <outdir> <react|vue|tanstack>
//
// esbuild, the routers and spa-version come from js/ (its devDependencies and its source).
import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const js = fileURLToPath(new URL("../../../js/", import.meta.url));
const require = createRequire(js + "package.json");
const { build } = require("esbuild");

const [outdir, router] = process.argv.slice(2);
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [`${here}${router}.jsx`],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  jsx: "automatic",
  outfile: `${outdir}/app.js`,
  define: {
    "process.env.NODE_ENV": '"production"',
    __VUE_OPTIONS_API__: "false",
    __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false",
  },
  alias: { "spa-version": js + "src/index.js" },
  nodePaths: [js + "node_modules"],
  logLevel: "warning",
});
writeFileSync(
  `${outdir}/index.html`,
  `<!doctype html><html><head><meta charset="utf-8"><script type="module" src="/app.js"></script></head><body><div id="root"></div></body></html>\n`,
);
