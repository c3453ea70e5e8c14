// The shipped artifacts: the script-tag build in the Python wheel is a fresh build of
// src/, it starts itself, and the size budget check fails when over budget.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, test } from "node:test";
import { WHEEL_COPY, buildOne, root } from "../scripts/build.js";
import { cleanup, meta, page, serve, until } from "./helpers.js";

afterEach(cleanup);

const freshIIFE = async () => (await buildOne("iife", { write: false })).outputFiles[0].text;

test("the copy in the Python package equals a fresh build (fix: cd js && npm run sync)", async () => {
  const shipped = readFileSync(WHEEL_COPY, "utf8");
  const fresh = await freshIIFE();
  let at = 0;
  while (at < fresh.length && shipped[at] === fresh[at]) at++;
  // A short message, not two copies of a minified file.
  assert.ok(
    shipped === fresh,
    `src/spa_version/static/spa-version.js differs from a fresh build of js/src at character ${at} ` +
      `(shipped ${shipped.length}, fresh ${fresh.length} characters): run \`cd js && npm run sync\``,
  );
});

function runScript(w, code, attrs = {}) {
  const script = w.document.createElement("script");
  for (const [name, value] of Object.entries(attrs)) script.setAttribute(name, value);
  script.textContent = code;
  w.document.head.append(script);
}

test("the script-tag build starts itself with every helper on", async () => {
  const srv = await serve(() => ({ headers: { "X-SPA-Version": "2; policy=prompt" } }));
  const { w } = page(srv.url, meta("1"), { scripts: true });
  runScript(w, await freshIIFE());
  assert.equal(typeof w.SpaVersion.start, "function");
  const sv = w.SpaVersion.start({ idle: 5 }); // merges into the running instance
  assert.equal(sv.options.idle, 5);
  assert.equal(sv.baseline, 1);
  const req = new w.XMLHttpRequest(); // XHR observed: watchXHR is on
  req.open("GET", "/api");
  req.send();
  await until(() => sv.latest);
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1");
});

test("data-manual leaves starting to the page", async () => {
  const srv = await serve(() => ({ headers: { "X-SPA-Version": "2" } }));
  const { w } = page(srv.url, meta("1"), { scripts: true });
  const fetchBefore = w.fetch;
  runScript(w, await freshIIFE(), { "data-manual": "" });
  assert.equal(w.fetch, fetchBefore, "nothing wrapped yet");
  assert.equal(w.SpaVersion.start({ baseline: 7 }).baseline, 7);
});

test("the size check fails when a build is over budget", () => {
  const ok = execFileSync(process.execPath, ["scripts/size.js"], { cwd: root, encoding: "utf8" });
  assert.match(ok, /ok {3}core: .* B min\+gzip \(budget 1536 B\)/);
  const over = spawnSync(process.execPath, ["scripts/size.js"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, SIZE_BUDGET: "1000" },
  });
  assert.equal(over.status, 1);
  assert.match(over.stdout, /OVER core/);
});
