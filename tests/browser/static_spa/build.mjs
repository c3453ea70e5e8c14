// Build the static test SPA (tests/browser/test_static_spa.py) the way an app's bundler does:
// esbuild, ES modules with code splitting (one chunk per page, loaded by dynamic import()),
// content-hashed file names, a static index.html that names the entry chunk. Each release
// gets its own RELEASE constant, so its chunk names differ from the other's.
//
//   node build.mjs <outdir> <release>
//
// esbuild, axios and spa-version come from js/ (its node_modules and its source), as an
// app would install them.
import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { basename } from "node:path";

const here = fileURLToPath(new URL(".", import.meta.url));
const js = fileURLToPath(new URL("../../../js/", import.meta.url));
const require = createRequire(js + "package.json");
const { build } = require("esbuild");

const [outdir, release] = process.argv.slice(2);
const result = await build({
  entryPoints: [here + "src/main.js"],
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  target: "es2020",
  outdir: outdir + "/assets",
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  metafile: true,
  define: { RELEASE: JSON.stringify(release) },
  alias: { "spa-version": js + "src/index.js" },
  nodePaths: [js + "node_modules"],
  logLevel: "warning",
});
const entry = Object.entries(result.metafile.outputs).find(([, out]) => out.entryPoint)[0];
mkdirSync(outdir, { recursive: true });
// The precache manifest a PWA's worker installs from (as Workbox's is): the shell and
// every chunk of this build.
const assets = Object.keys(result.metafile.outputs).map((path) => "/assets/" + basename(path));
writeFileSync(outdir + "/precache.json", JSON.stringify(["/", ...assets]));
// No template, no meta tag: the page learns its version from its own response.
writeFileSync(
  outdir + "/index.html",
  `<!doctype html><html><head><meta charset="utf-8"><title>static spa</title>
<script type="module" src="/assets/${basename(entry)}"></script></head>
<body><nav><a data-link href="/">login</a> <a data-link href="/items">items</a> <a data-link href="/edit">edit</a> <a data-link href="/about">about</a></nav>
<main id="app"></main></body></html>\n`,
);
