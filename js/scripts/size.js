// Size budgets, min+gzip (esbuild --minify, target es2020, gzip -9), checked by `npm test`;
// over budget exits 1. Each build is what a user ships:
// - core: `import { start } from "spa-version"; start()`, bundled from the package entry
//   (fetch observing, baseline, policies, veto, loop guard, idle timer, 409 reloads,
//   pinning). 1550 B; budget 1580 B. The target is 1536 B (what it was before pinning,
//   X-SPA-Pin, added 66 B): docs/js.md says where the bytes go.
// - entry: every export of the package entry, every watch*() helper included. 2348 B;
//   budget 2380 B. The target is 2048 B; the anchor: the smallest polling peer ships
//   1.9 KB with far fewer features.
// - script: the script-tag build served at /__spa-version.js (the entry, plus starting
//   itself and finding its endpoint next to its own URL). 2443 B; budget 2475 B.
// Each budget keeps about 30 B of room over the size it was set at.
// CORE_BUDGET / ENTRY_BUDGET / SCRIPT_BUDGET (bytes) override them; test/build.test.js
// uses that to prove the check fails when over.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { buildOne, common, root } from "./build.js";

export const budgets = {
  core: Number(process.env.CORE_BUDGET || 1580),
  entry: Number(process.env.ENTRY_BUDGET || 2380),
  script: Number(process.env.SCRIPT_BUDGET || 2475),
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
