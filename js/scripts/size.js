// Size budgets, min+gzip (esbuild --minify, target es2020, gzip -9), checked by `npm test`;
// over budget exits 1. Each build is what a user ships:
// - core: `import { start } from "spa-version"; start()`, bundled from the package entry
//   (fetch observing, baseline, policies, veto, loop guard, idle timer, 409 reloads,
//   pinning). Budget 1632 B: 1536 B until pinning (X-SPA-Pin, docs/js.md) added 66 B.
// - entry: every export of the package entry, every watch*() helper included. Budget
//   2496 B: what the helpers cost today (about 865 B over the core; watchXHR alone about
//   210 B), plus a little room. The anchor: the smallest polling peer ships 1.9 KB with far
//   fewer features. Pinning added 65 B (was 2432 B).
// - script: the script-tag build served at /__spa-version.js (the entry, plus starting
//   itself and finding its endpoint next to its own URL). Budget 2664 B: pinning added
//   62 B (was 2600 B).
// CORE_BUDGET / ENTRY_BUDGET / SCRIPT_BUDGET (bytes) override them; test/build.test.js
// uses that to prove the check fails when over.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { buildOne, common, root } from "./build.js";

export const budgets = {
  core: Number(process.env.CORE_BUDGET || 1632),
  entry: Number(process.env.ENTRY_BUDGET || 2496),
  script: Number(process.env.SCRIPT_BUDGET || 2664),
};
// The package resolves itself by name (its "exports"), as it would in a user's bundler.
const bundle = (contents) =>
  build({ ...common, stdin: { contents, resolveDir: root }, format: "esm", minify: true, write: false });
const builds = {
  core: bundle('import { start } from "spa-version"; start();'),
  entry: bundle('export * from "spa-version";'),
  script: buildOne("iife", { write: false }),
};
let over = false;
for (const [name, pending] of Object.entries(builds)) {
  const code = (await pending).outputFiles[0].contents;
  const size = gzipSync(code, { level: 9 }).length;
  const ok = size <= budgets[name];
  over ||= !ok;
  console.log(`${ok ? "ok  " : "OVER"} ${name}: ${code.length} B min, ${size} B min+gzip (budget ${budgets[name]} B)`);
}
process.exit(over ? 1 : 0);
