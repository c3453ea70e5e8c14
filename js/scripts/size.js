// Size budgets (issue 3), min+gzip, checked by `npm test`; over budget exits 1.
// - core: what a bundler ships for `import { start } from "spa-version"; start()`:
//   fetch/XHR observing, baseline, policies, veto, loop guard, tabs, focus check. <= 1.5 KB.
// - script: the whole script-tag build (core + every watch*() helper + auto-start), <= 2.5 KB.
// SIZE_BUDGET / SCRIPT_BUDGET (bytes) override them; test/size.test.js uses that to
// prove the check fails when over.
import { gzipSync } from "node:zlib";
import { buildOne, root } from "./build.js";

const budgets = {
  core: Number(process.env.SIZE_BUDGET || 1536),
  script: Number(process.env.SCRIPT_BUDGET || 2560),
};
const builds = {
  core: buildOne("esm", {
    entryPoints: undefined,
    stdin: { contents: 'import { start } from "./src/index.js"; start();', resolveDir: root },
    minify: true,
    write: false,
  }),
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
