// The shipped artifacts: the script-tag build in the Python wheel is a fresh build of
// src/, it starts itself and finds its endpoint; the npm package resolves in a bundler
// as published; and the size budget check fails when over budget.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { build } from "esbuild";
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

test("window.SpaVersion has every export of the package entry, and nothing else", async () => {
  const { w } = page((await serve()).url, meta("1"), { scripts: true });
  runScript(w, await freshIIFE(), { "data-manual": "" });
  const api = await import("../src/index.js");
  assert.deepEqual(Object.keys(w.SpaVersion).sort(), Object.keys(api).sort());
});

test("data-manual leaves starting to the page", async () => {
  const srv = await serve(() => ({ headers: { "X-SPA-Version": "2" } }));
  const { w } = page(srv.url, meta("1"), { scripts: true });
  const fetchBefore = w.fetch;
  runScript(w, await freshIIFE(), { "data-manual": "" });
  assert.equal(w.fetch, fetchBefore, "nothing wrapped yet");
  assert.equal(w.SpaVersion.start({ baseline: 7 }).baseline, 7);
});

// A page that loads the script-tag build from `path` on `srv` (which serves it there), with
// `attrs` on its tag; resolves to the page's window once the script has run.
async function loadScript(path, attrs = {}) {
  const code = await freshIIFE();
  const srv = await serve((req) =>
    /\.js(\?|$)/.test(req.url)
      ? { headers: { "content-type": "text/javascript" }, body: code }
      : { headers: { "X-SPA-Version": "1" } },
  );
  const { w } = page(srv.url, meta("1"), { scripts: true });
  const script = w.document.createElement("script");
  for (const [name, value] of Object.entries({ defer: "", ...attrs, src: srv.url + path })) script.setAttribute(name, value);
  w.document.head.append(script);
  await until(() => w.SpaVersion);
  return { w, srv };
}

for (const [path, attrs, endpoint] of [
  ["/__spa-version.js", {}, "/__spa-version"],
  // An app under a mount prefix serves the script under it, and the endpoint next to it.
  ["/shop/__spa-version.js", {}, "/shop/__spa-version"],
  ["/shop/__spa-version.js?v=2", {}, "/shop/__spa-version"],
  // Any other name says nothing about the endpoint (the IIFE bundled into an app's script).
  ["/assets/app-3f2a.js", {}, "/__spa-version"],
  ["/shop/__spa-version.json.js", {}, "/__spa-version"],
  ["/static/spa-version.js", { "data-endpoint": "/api/version" }, "/api/version"],
]) {
  test(`the script-tag build served at ${path} ${JSON.stringify(attrs)} checks ${endpoint}`, async () => {
    const { w, srv } = await loadScript(path, attrs);
    await w.SpaVersion.check();
    assert.deepEqual(
      srv.requests.map((r) => r.url),
      [path, endpoint],
    );
  });
}

test("data-manual: the derived endpoint applies to an instance the page starts", async () => {
  const { w, srv } = await loadScript("/shop/__spa-version.js", { "data-manual": "" });
  const sv = w.SpaVersion.start({ baseline: 1 });
  await w.SpaVersion.check(sv);
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/shop/__spa-version.js", "/shop/__spa-version"],
  );
});

// -- the npm package, resolved by name as a user's bundler does (the package resolves
// itself through its "exports"); nothing in dist/ is needed.

const bundle = async (contents) => {
  const result = await build({
    stdin: { contents, resolveDir: root },
    bundle: true,
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  return { code: result.outputFiles[0].text, warnings: result.warnings };
};

test('import "spa-version/iife" is kept by a bundler (the file has side effects)', async () => {
  const { code, warnings } = await bundle('import "spa-version/iife";');
  assert.deepEqual(warnings, []);
  assert.match(code, /globalThis\.SpaVersion = /);
  assert.match(code, /startAll\(\)/);
});

test("an unused import of the package entry costs nothing (the entry has no side effects)", async () => {
  const { code, warnings } = await bundle('import { start } from "spa-version";');
  assert.deepEqual(warnings, []);
  assert.equal(code.trim(), "");
});

test("the published package holds the entry, its types and the license", () => {
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" }));
  const files = packed.files.map((f) => f.path);
  for (const path of ["LICENSE", "README.md", "package.json", "index.d.ts", "src/index.js", "src/iife.js", "src/defaults.js"])
    assert.ok(files.includes(path), `${path} is not in the package: ${files.join(", ")}`);
  assert.deepEqual(
    files.filter((f) => f.startsWith("test/") || f.startsWith("scripts/")),
    [],
  );
});

test("the size check fails when a build is over budget", () => {
  const ok = execFileSync(process.execPath, ["scripts/size.js"], { cwd: root, encoding: "utf8" });
  assert.match(ok, /ok {3}core: .* B min\+gzip \(budget 1536 B\)/);
  // Each optional part is importable on its own, and reported.
  for (const part of ["check", "watchXHR", "watchAxios", "watchTabs", "watchFocus", "watchIdle", "watchChunks", "watchServiceWorker", "watchSocket", "socketUrl"])
    assert.match(ok, new RegExp(`^ {5}${part}: \\+\\d+ B min\\+gzip over the core$`, "m"));
  for (const name of ["core", "entry", "script"]) {
    const over = spawnSync(process.execPath, ["scripts/size.js"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, [`${name.toUpperCase()}_BUDGET`]: "1000" },
    });
    assert.equal(over.status, 1);
    assert.match(over.stdout, new RegExp(`OVER ${name}:`));
  }
});
