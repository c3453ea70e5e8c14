// The opt-in helpers: XHR, tabs, focus check, chunk errors, sockets, check().
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import {
  check,
  socketUrl,
  start,
  startAll,
  watchChunks,
  watchFocus,
  watchSocket,
  watchTabs,
  watchXHR,
} from "../src/index.js";
import { cleanup, meta, page, record, serve, until } from "./helpers.js";

afterEach(cleanup);

async function versionServer(version) {
  const state = { version, status: 200, extra: {} };
  const srv = await serve(() => ({
    status: state.status,
    headers: { ...(state.version ? { "X-SPA-Version": state.version } : {}), ...state.extra },
  }));
  return Object.assign(srv, { state });
}

function xhr(w, method, url) {
  return new Promise((resolve) => {
    const req = new w.XMLHttpRequest();
    req.open(method, url);
    req.setRequestHeader("X-App", "kept");
    req.addEventListener("loadend", () => resolve(req));
    req.send();
  });
}

// -- watchXHR ---------------------------------------------------------------------------

test("watchXHR: same-origin XHR carries the client epoch and its response is observed", async () => {
  const srv = await versionServer("2; label=x");
  const { w } = page(srv.url, meta("1"));
  const sv = watchXHR(start({ window: w }));
  const req = await xhr(w, "GET", "/api");
  assert.equal(req.status, 200);
  assert.equal(req.responseText, "ok", "the app's XHR is untouched");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1");
  assert.equal(srv.requests[0].headers["x-app"], "kept");
  assert.deepEqual(sv.latest, { epoch: 2, label: "x", policy: "next-navigation", min: null });
});

test("watchXHR: a 409 with X-SPA-Reload reloads", async () => {
  const srv = await versionServer("2; min=2");
  srv.state.status = 409;
  srv.state.extra = { "X-SPA-Reload": "*" };
  const { w, loads } = page(srv.url, meta("1"));
  watchXHR(start({ window: w }));
  await xhr(w, "POST", "/api/save");
  assert.equal(loads.length, 1);
});

test("watchXHR: wraps once however often it is called", async () => {
  const srv = await versionServer("2");
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  watchXHR(sv);
  const open = w.XMLHttpRequest.prototype.open;
  watchXHR(sv);
  startAll({ window: w });
  assert.equal(w.XMLHttpRequest.prototype.open, open);
  await xhr(w, "GET", "/api");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1", "one header, not a list");
});

// -- watchTabs ----------------------------------------------------------------------------

test("watchTabs: a tab that made no request learns what another tab saw", async () => {
  const srv = await versionServer("2; label=b; policy=next-navigation");
  const a = page(srv.url, meta("1"));
  const b = page(srv.url, meta("1"));
  const svA = watchTabs(start({ window: a.w, channel: "tabs-test-1" }));
  const svB = watchTabs(start({ window: b.w, channel: "tabs-test-1" }));
  const seenB = record(svB);
  await a.w.fetch("/api");
  assert.equal(svA.latest.epoch, 2);
  await until(() => svB.latest);
  assert.deepEqual(svB.latest, { epoch: 2, label: "b", policy: "next-navigation", min: null });
  assert.equal(seenB.length, 1);
  assert.equal(srv.requests.length, 1, "tab B made no request");
  b.w.history.pushState({}, "", "/next");
  assert.deepEqual(b.loads, [{ how: "reload", href: srv.url + "/next" }], "and moves by its own policy");
});

test("watchTabs: news from another tab never sets a missing baseline", async () => {
  const srv = await versionServer("2");
  const a = page(srv.url, meta("1"));
  const b = page(srv.url); // no meta tag, no request yet
  watchTabs(start({ window: a.w, channel: "tabs-test-2" }));
  const svB = watchTabs(start({ window: b.w, channel: "tabs-test-2" }));
  const third = page(srv.url, meta("1"));
  const svC = watchTabs(start({ window: third.w, channel: "tabs-test-2" }));
  await a.w.fetch("/api");
  await until(() => svC.latest);
  assert.equal(svB.baseline, null);
  assert.equal(svB.latest, null);
});

test("watchTabs: channel: false keeps a tab to itself", async () => {
  const srv = await versionServer("2");
  const a = page(srv.url, meta("1"));
  const b = page(srv.url, meta("1"));
  const c = page(srv.url, meta("1"));
  watchTabs(start({ window: a.w, channel: "tabs-test-3" }));
  const svB = watchTabs(start({ window: b.w, channel: false }));
  const svC = watchTabs(start({ window: c.w, channel: "tabs-test-3" }));
  await a.w.fetch("/api");
  await until(() => svC.latest);
  assert.equal(svB.latest, null);
});

// -- watchFocus / check ----------------------------------------------------------------------

function setHidden(w, hidden) {
  Object.defineProperty(w.document, "hidden", { get: () => hidden, configurable: true });
  w.document.dispatchEvent(new w.Event("visibilitychange"));
}

test("check(): fetches the version endpoint with no-store and resolves to staleness", async () => {
  const srv = await versionServer("1");
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  assert.equal(await check(sv), false);
  srv.state.version = "2";
  assert.equal(await check(sv), true);
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/__spa-version", "/__spa-version"],
  );
  const dead = await serve();
  await dead.close();
  sv.options.endpoint = dead.url + "/__spa-version";
  assert.equal(await check(sv), true, "never rejects");
});

test("watchFocus: a tab becoming visible checks, at most once per focusCheck ms", async () => {
  const srv = await versionServer("1");
  const { w } = page(srv.url, meta("1"));
  const sv = watchFocus(start({ window: w, focusCheck: 0 }));
  setHidden(w, true);
  assert.equal(srv.requests.length, 0, "no check on hiding");
  setHidden(w, false);
  await until(() => srv.requests.length == 1);
  assert.equal(srv.requests[0].url, "/__spa-version");
  sv.options.focusCheck = 60_000;
  setHidden(w, true);
  setHidden(w, false);
  sv.options.focusCheck = false;
  setHidden(w, true);
  setHidden(w, false);
  await w.fetch("/marker");
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/__spa-version", "/marker"],
  );
});

test("watchFocus: a stale hidden tab that comes back learns the new version", async () => {
  const srv = await versionServer("2; policy=prompt");
  const { w } = page(srv.url, meta("1"));
  const sv = watchFocus(start({ window: w, focusCheck: 0 }));
  const seen = record(sv);
  setHidden(w, false);
  await until(() => seen.length == 2);
  assert.deepEqual(
    seen.map(([type]) => type),
    ["update", "prompt"],
  );
});

// -- watchChunks ---------------------------------------------------------------------------

test("watchChunks: a script load error checks, and reloads if a newer version is live", async () => {
  const srv = await versionServer("2; policy=silent");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = watchChunks(start({ window: w }));
  const script = w.document.createElement("script");
  w.document.body.append(script);
  script.dispatchEvent(new w.Event("error"));
  await until(() => loads.length);
  assert.equal(srv.requests[0].url, "/__spa-version");
  assert.equal(sv.latest.epoch, 2);
});

test("watchChunks: a failed dynamic import checks; no newer version means no reload", async () => {
  const srv = await versionServer("1");
  const { w, loads } = page(srv.url, meta("1"));
  watchChunks(start({ window: w }));
  const event = new w.Event("unhandledrejection");
  event.reason = new TypeError("Failed to fetch dynamically imported module: /assets/page-3f2a.js");
  w.dispatchEvent(event);
  await until(() => srv.requests.length);
  await w.fetch("/marker"); // the check's response has been handled by now
  assert.deepEqual(loads, []);
});

test("watchChunks: other errors (an image, a script exception, a plain rejection) don't check", async () => {
  const srv = await versionServer("2");
  const { w } = page(srv.url, meta("1"));
  watchChunks(start({ window: w }));
  const img = w.document.createElement("img");
  w.document.body.append(img);
  img.dispatchEvent(new w.Event("error"));
  w.dispatchEvent(new w.Event("error"));
  const event = new w.Event("unhandledrejection");
  event.reason = new Error("payment declined");
  w.dispatchEvent(event);
  await w.fetch("/marker");
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/marker"],
  );
});

// -- sockets ------------------------------------------------------------------------------

test("watchSocket: a 1012 or 4012 close with a version marks the tab stale; other closes don't", async () => {
  const srv = await versionServer(null);
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const ws = new w.EventTarget(); // anything with addEventListener, as a WebSocket has
  assert.equal(watchSocket(ws, sv), ws);
  const close = (code, reason) => ws.dispatchEvent(new w.CloseEvent("close", { code, reason }));
  close(1000, "3; label=normal-close");
  close(1001, "3");
  close(1011, "3");
  close(4409, "3");
  assert.equal(sv.latest, null);
  close(1012, "3; label=b7c8; policy=next-navigation");
  assert.deepEqual(sv.latest, { epoch: 3, label: "b7c8", policy: "next-navigation", min: null });
  // 4012: the same drain, from a server that refuses 1012 (docs/protocol.md).
  close(4012, "4; label=d9e0; policy=prompt");
  assert.deepEqual(sv.latest, { epoch: 4, label: "d9e0", policy: "prompt", min: null });
  await w.fetch("/marker");
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/marker"],
    "a close that names its version, or is no drain, asks the server nothing",
  );
});

for (const code of [1012, 4012]) {
  // "0; label=b": the unreleased value names no release.
  for (const reason of ["", "not a version", "0", "0; label=b"]) {
    test(`watchSocket: a ${code} close with reason ${JSON.stringify(reason)} checks the version endpoint`, async () => {
      const srv = await versionServer("5; label=e1; policy=silent");
      const { w } = page(srv.url, meta("1"));
      const sv = start({ window: w, endpoint: "/shop/__spa-version" });
      const ws = watchSocket(new w.EventTarget(), sv);
      ws.dispatchEvent(new w.CloseEvent("close", { code, reason }));
      await until(() => sv.latest);
      assert.deepEqual(
        srv.requests.map((r) => r.url),
        ["/shop/__spa-version"],
      );
      assert.deepEqual(sv.latest, { epoch: 5, label: "e1", policy: "silent", min: null });
    });
  }
}

test("socketUrl: an absolute ws URL carrying spa-client-version", async () => {
  const srv = await versionServer(null);
  const { w } = page(srv.url, meta("41"));
  const sv = start({ window: w });
  const host = srv.url.slice("http://".length);
  assert.equal(socketUrl("/ws", sv), `ws://${host}/ws?spa-client-version=41`);
  assert.equal(socketUrl("/ws?room=a", sv), `ws://${host}/ws?room=a&spa-client-version=41`);
  assert.equal(socketUrl("https://example.test/live", sv), "wss://example.test/live?spa-client-version=41");
  const fresh = start({ window: page(srv.url).w });
  assert.equal(socketUrl("/ws", fresh), `ws://${host}/ws`, "no baseline, no parameter");
});
