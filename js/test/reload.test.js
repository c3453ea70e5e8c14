// What a reload leaves behind: history exactly as the router left it, the refused request
// of a 409 handed to the `reload` event (where the app stashes its work), the loop guard
// telling "reloaded but still old" from a loop, and the one check at start when the page
// carries no baseline. Against a real HTTP server and happy-dom; the same in Chromium:
// tests/browser/test_first_30_minutes.py.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { start, startAll } from "../src/index.js";
import { cleanup, meta, page, record, serve, until } from "./helpers.js";

afterEach(cleanup);

const versionServer = (version, extra = {}) =>
  serve((req) => ({ status: req.url.startsWith("/api/save") ? 409 : 200, headers: { "X-SPA-Version": version, ...extra } }));

test("a route change reloads the router's own entry: no second push", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  await w.fetch("/api");
  const before = w.history.length;
  w.history.pushState({}, "", "/next"); // the router's push
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/next" }]);
  assert.equal(w.history.length, before + 1, "one entry, as the router made it");
});

test("navigate() before the router's push loads the target as a new page: no pushState", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  await w.fetch("/api");
  // A router that watches pushState (TanStack Router's history) would start the target's
  // loaders with the old code.
  w.history.pushState = () => assert.fail("pushState");
  assert.equal(sv.navigate("/next"), true);
  assert.deepEqual(loads, [{ how: "assign", href: srv.url + "/next" }]);
});

test("Back (popstate) reloads where it is: the forward entry is kept", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  const before = w.history.length;
  // Before the news: an in-app route change, then (as Back does) the URL goes back first.
  w.history.pushState({}, "", "/b");
  await w.fetch("/api");
  w.history.replaceState = () => assert.fail("no replace");
  w.history.pushState = () => assert.fail("a push would drop the forward entry");
  // What Back does: the URL is the previous entry's, then popstate fires.
  w.happyDOM.setURL(srv.url + "/");
  w.dispatchEvent(new w.PopStateEvent("popstate"));
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/" }]);
  assert.equal(w.history.length, before + 1);
});

test("the reload event of a 409 carries the refused request: method, URL, body as given", async () => {
  const srv = await versionServer("2; min=2", { "X-SPA-Reload": "*" });
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w, beforeReload: () => false });
  const seen = record(sv, ["reload"]);
  const body = JSON.stringify({ title: "draft" });
  const res = await w.fetch("/api/save", { method: "POST", body, headers: { "content-type": "application/json" } });
  assert.equal(res.status, 409);
  assert.equal(loads.length, 1);
  const [[, info]] = seen;
  assert.equal(info.reason, "stale-client");
  assert.equal(info.request.method, "POST");
  assert.equal(info.request.url, srv.url + "/api/save");
  assert.equal(info.request.body, body);
});

test("observe() without a request still reloads on a 409 (request undefined)", async () => {
  const { w, loads } = page("http://127.0.0.1:9", meta("1"));
  const sv = start({ window: w });
  const seen = record(sv, ["reload"]);
  sv.observe({ "x-spa-version": "2", "x-spa-reload": "*" }, 409);
  assert.equal(loads.length, 1);
  assert.equal(seen[0][1].request, undefined);
});

test("blocked says stillOld when the tab reloaded for that epoch already, not when it loops", async () => {
  const srv = await versionServer("5");
  const old = page(srv.url, meta("4"));
  // The previous page of this tab reloaded for epoch 5, and this one came back with 4.
  old.w.sessionStorage.setItem("spa-version:reloads", JSON.stringify([[5, Date.now()]]));
  const seen = record(start({ window: old.w }), ["blocked"]);
  await old.w.fetch("/api");
  old.w.history.pushState({}, "", "/next");
  assert.equal(seen[0][1].stillOld, true);
  assert.deepEqual(old.loads, []);

  const looping = page(srv.url, meta("4"));
  const now = Date.now();
  looping.w.sessionStorage.setItem("spa-version:reloads", JSON.stringify([[1, now], [2, now], [3, now]]));
  const seen2 = record(start({ window: looping.w }), ["blocked"]);
  await looping.w.fetch("/api");
  looping.w.history.pushState({}, "", "/next");
  assert.equal(seen2[0][1].stillOld, false);
});

test("startAll() with no baseline in the page asks the endpoint once, at start", async () => {
  const srv = await versionServer("3; label=c");
  const { w } = page(srv.url);
  const sv = startAll({ window: w, channel: false });
  await until(() => sv.baseline === 3);
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/__spa-version"],
  );
  const tagged = page(srv.url, meta("2"));
  startAll({ window: tagged.w, channel: false });
  // A check would be sent at start(), before this request.
  await tagged.w.fetch("/api/next");
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/__spa-version", "/api/next"],
    "a page with its baseline asks nothing",
  );
});
