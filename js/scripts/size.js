// Size budgets, min+gzip (esbuild --minify, target es2020, gzip -9), checked by `npm test`;
// over budget exits 1. Each build is what a user ships:
// - core: `import { start } from "spa-version"; start()`, bundled from the package entry
//   (fetch observing, baseline from the option, meta tag or Server-Timing, policies,
//   veto, loop guard, 409 reloads, pinning). Budget 1536 B, the target (docs/js.md).
// - entry: every export of the package entry, every helper included. Budget 2900 B.
// - script: the script-tag build served at /__spa-version.js (the entry, plus starting
//   itself and finding its endpoint next to its own URL). Budget 2990 B.
// Then each optional export on its own: what `import { start, X }` adds to the core
// (reported, not budgeted: each is paid only by the apps that import it).
// CORE_BUDGET / ENTRY_BUDGET / SCRIPT_BUDGET (bytes) override them; test/build.test.js
// uses that to prove the check fails when over.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { buildOne, common, root } from "./build.js";

export const budgets = {
  core: Number(process.env.CORE_BUDGET || 1536),
  entry: Number(process.env.ENTRY_BUDGET || 2900),
  script: Number(process.env.SCRIPT_BUDGET || 2990),
};
// The package resolves itself by name (its "exports"), as it would in a user's bundler.
const bundle = (contents) =>
  build({ ...common, stdin: { contents, resolveDir: root }, format: "esm", minify: true, write: false });
const builds = {
  core: bundle('import { start } from "spa-version"; start();'),
  entry: bundle('export * from "spa-version";'),
  script: buildOne("iife", { write: false }),
};
const parts = ["check", "watchXHR", "watchAxios", "watchTabs", "watchFocus", "watchIdle", "watchChunks", "watchServiceWorker", "watchSocket", "watchEventSource", "socketUrl", "startAll"];
for (const name of parts) builds[name] = bundle(`import { start, ${name} } from "spa-version"; console.log(start, ${name});`);
const gz = async (pending) => gzipSync((await pending).outputFiles[0].contents, { level: 9 }).length;
const base = await gz(bundle('import { start } from "spa-version"; console.log(start);'));
let over = false;
for (const [name, pending] of Object.entries(builds)) {
  const code = (await pending).outputFiles[0].contents;
  const size = gzipSync(code, { level: 9 }).length;
  if (!(name in budgets)) {
    console.log(`     ${name}: +${size - base} B min+gzip over the core`);
    continue;
  }
  const ok = size <= budgets[name];
  over ||= !ok;
  console.log(`${ok ? "ok  " : "OVER"} ${name}: ${code.length} B min, ${size} B min+gzip (budget ${budgets[name]} B)`);
}
process.exit(over ? 1 : 0);
