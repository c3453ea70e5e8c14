// Build the script-tag IIFE into dist/; with --sync also copy it into the Python package
// (src/spa_version/static/spa-version.js), which the middleware serves at
// /__spa-version.js. test/build.test.js fails when that copy is out of date.
// The npm entry needs no build: package.json points bundlers at src/ itself, so
// `npm install ./js` works from a fresh clone.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const WHEEL_COPY = `${root}../src/spa_version/static/spa-version.js`;

// One place for the options, so the size check and the sync test build exactly what ships.
export const common = { bundle: true, target: "es2020", legalComments: "none", logLevel: "warning" };
export const builds = {
  iife: {
    entryPoints: [`${root}src/iife.js`],
    format: "iife",
    minify: true,
    outfile: `${root}dist/spa-version.iife.js`,
  },
};

export async function buildOne(name, extra = {}) {
  return build({ ...common, ...builds[name], ...extra });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  mkdirSync(`${root}dist`, { recursive: true });
  await buildOne("iife");
  if (process.argv.includes("--sync")) {
    copyFileSync(builds.iife.outfile, WHEEL_COPY);
    console.log(`copied ${builds.iife.outfile} -> ${WHEEL_COPY}`);
  }
}
