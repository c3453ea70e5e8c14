// start(): baseline, observing fetch, sending the client epoch, policies, route changes,
// veto, loop guard and the 409 reload; against a real HTTP server and happy-dom.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { start, watchIdle } from "../src/index.js";
import { cleanup, meta, page, record, serve, until } from "./helpers.js";

afterEach(cleanup);

/** A server whose X-SPA-Version is whatever `state.version` holds (none if null). */
async function versionServer(version = "1; label=a; policy=next-navigation") {
  const state = { version, status: 200, extra: {} };
  const srv = await serve(() => ({
    status: state.status,
    headers: { ...(state.version ? { "X-SPA-Version": state.version } : {}), ...state.extra },
  }));
  return Object.assign(srv, { state });
}

// -- baseline ------------------------------------------------------------------

test("the baseline comes from the meta tag", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("3; label=x; policy=immediate"));
  assert.equal(start({ window: w }).baseline, 3);
});

test("an explicit baseline option wins over the meta tag, as an epoch or a header value", async () => {
  const srv = await versionServer();
  assert.equal(start({ window: page(srv.url, meta("3")).w, baseline: 9 }).baseline, 9);
  assert.equal(start({ window: page(srv.url, meta("3")).w, baseline: "8; label=b" }).baseline, 8);
});

test("without option or meta tag, the first response seen is the baseline", async () => {
  const srv = await versionServer("4; label=first");
  const { w } = page(srv.url);
  const sv = start({ window: w });
  const seen = record(sv);
  assert.equal(sv.baseline, null);
  await w.fetch("/a");
  assert.equal(sv.baseline, 4);
  assert.equal(sv.latest, null, "the baseline is not an update");
  srv.state.version = "5; label=second";
  await w.fetch("/b");
  assert.equal(sv.latest.epoch, 5);
  assert.deepEqual(
    seen.map(([type]) => type),
    ["update"],
  );
});

test("the unreleased value (epoch 0) is a baseline: the first release is an update, never the baseline", async () => {
  // What a server stamps before the first bump (docs/protocol.md, "Before the first release").
  const srv = await versionServer("0; label=unreleased; policy=next-navigation");
  const { w } = page(srv.url, meta("0; label=unreleased; policy=next-navigation"));
  const sv = start({ window: w });
  const seen = record(sv);
  assert.equal(sv.baseline, 0);
  await w.fetch("/a");
  assert.equal(sv.baseline, 0);
  assert.equal(sv.latest, null, "epoch 0 is not news to a tab that holds it");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], undefined, "0 is no client epoch");
  srv.state.version = "1; label=b1; policy=silent";
  await w.fetch("/b");
  assert.equal(sv.baseline, 0);
  assert.deepEqual(sv.latest, { epoch: 1, label: "b1", policy: "silent", min: null });
  assert.deepEqual(
    seen.map(([type, v]) => [type, v.epoch]),
    [["update", 1]],
  );
});

test("without a page baseline, an unreleased response becomes the baseline", async () => {
  const srv = await versionServer("0; label=unreleased");
  const { w } = page(srv.url);
  const sv = start({ window: w });
  await w.fetch("/a");
  assert.equal(sv.baseline, 0);
  srv.state.version = "1; label=b1";
  await w.fetch("/b");
  assert.equal(sv.latest.epoch, 1);
});

test("epoch 0 never counts as news: a tab on a release ignores it", async () => {
  const srv = await versionServer("0; label=unreleased");
  const { w } = page(srv.url, meta("3"));
  const sv = start({ window: w });
  const seen = record(sv);
  await w.fetch("/a");
  sv.offer("0; label=unreleased; policy=immediate");
  assert.equal(sv.latest, null);
  assert.deepEqual(seen, []);
});

// -- observing -----------------------------------------------------------------

test("only a strictly newer epoch counts: missing, older and equal headers change nothing", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("5"));
  const sv = start({ window: w });
  const seen = record(sv);
  for (const version of [null, "4; label=cached", "5; label=same", "garbage", "0"]) {
    srv.state.version = version;
    await w.fetch("/x");
  }
  assert.equal(sv.latest, null);
  assert.deepEqual(seen, []);
  srv.state.version = "6; label=new; policy=silent";
  await w.fetch("/x");
  srv.state.version = "6; label=new; policy=silent"; // the same news again: no second event
  await w.fetch("/x");
  srv.state.version = "5; label=old-server"; // an older server after the bump: ignored
  await w.fetch("/x");
  assert.deepEqual(sv.latest, { epoch: 6, label: "new", policy: "silent", min: null });
  assert.deepEqual(
    seen.map(([type, v]) => [type, v.epoch]),
    [["update", 6]],
  );
});

test("a header repeated by a proxy (one comma-joined value) counts once, at its highest epoch", async () => {
  // Node sends an array as repeated header lines; fetch joins them with ", " (Fetch
  // standard, "get" a header), as a proxy or an XHR would.
  const srv = await serve(() => ({ headers: { "X-SPA-Version": ["3; label=c; policy=prompt", "2; label=b", "junk"] } }));
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const seen = record(sv);
  await w.fetch("/api");
  assert.deepEqual(sv.latest, { epoch: 3, label: "c", policy: "prompt", min: null });
  assert.deepEqual(
    seen.map(([type, v]) => [type, v.epoch]),
    [
      ["update", 3],
      ["prompt", 3],
    ],
  );
});

test("the fetch wrapper gives back the original response, body and status untouched", async () => {
  const srv = await serve(() => ({ status: 201, headers: { "X-SPA-Version": "2" }, body: "payload" }));
  const { w } = page(srv.url, meta("1"));
  start({ window: w });
  const res = await w.fetch("/data", { method: "POST", body: "in" });
  assert.equal(res.status, 201);
  assert.equal(await res.text(), "payload");
  assert.equal(srv.requests[0].method, "POST");
});

test("fetch errors and aborts reach the caller as before", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("1"));
  start({ window: w });
  const dead = await serve();
  await dead.close();
  await assert.rejects(w.fetch(dead.url + "/gone"));
  const controller = new w.AbortController();
  controller.abort();
  await assert.rejects(w.fetch("/x", { signal: controller.signal }), (e) => e.name == "AbortError");
});

test("a throwing listener does not break the app's fetch; its error is still reported", async () => {
  const srv = await versionServer("2");
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  sv.on("update", () => {
    throw new Error("listener bug");
  });
  const reported = new Promise((resolve) => w.addEventListener("error", (e) => resolve(e.error)));
  const res = await w.fetch("/x");
  assert.equal(res.status, 200);
  assert.equal((await reported).message, "listener bug");
});

test("a throwing beforeReload breaks neither the router's pushState nor a 409's fetch", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  const errors = [];
  w.addEventListener("error", (e) => errors.push(e.error.message));
  start({
    window: w,
    beforeReload: () => {
      throw new Error("app bug");
    },
  });
  await w.fetch("/api");
  w.history.pushState({}, "", "/next"); // must not throw
  assert.equal(w.location.pathname, "/next");
  assert.deepEqual(loads, []);
  await until(() => errors.length == 1);
  assert.deepEqual(errors, ["app bug"]);
});

test("observe() takes Headers, get()-objects and plain lowercase objects (axios)", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  sv.observe(new w.Headers({ "X-SPA-Version": "2" }));
  assert.equal(sv.latest.epoch, 2);
  sv.observe({ get: (name) => (name == "X-SPA-Version" ? "3" : null) });
  assert.equal(sv.latest.epoch, 3);
  sv.observe({ "x-spa-version": "4; policy=silent" }, 200);
  assert.equal(sv.latest.epoch, 4);
});

test("a custom header name is read instead of X-SPA-Version", async () => {
  const srv = await versionServer("2");
  srv.state.extra = { "X-Build": "7" };
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w, header: "X-Build" });
  await w.fetch("/x");
  assert.equal(sv.latest.epoch, 7);
});

// -- sending the client epoch --------------------------------------------------------

test("same-origin requests carry X-SPA-Client-Version; cross-origin ones don't by default", async () => {
  const srv = await versionServer();
  const other = await serve(() => ({ headers: { "access-control-allow-origin": "*" } }));
  const { w } = page(srv.url, meta("41"));
  start({ window: w });
  await w.fetch("/same", { headers: { "X-App": "kept" } });
  // (A Request as input is proven in Chromium, tests/browser: happy-dom's fetch ignores
  // init.headers when given a Request, which the Fetch standard and browsers honour.)
  await w.fetch(new URL(srv.url + "/url-object"));
  await w.fetch(other.url + "/cross");
  const [same, urlObject] = srv.requests;
  assert.equal(same.headers["x-spa-client-version"], "41");
  assert.equal(same.headers["x-app"], "kept");
  assert.equal(urlObject.headers["x-spa-client-version"], "41");
  assert.equal(other.requests[0].headers["x-spa-client-version"], undefined);
});

test("sendClientVersion: true sends everywhere, false nowhere, a function decides", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("41"));
  const sv = start({ window: w, sendClientVersion: false, clientHeader: "X-Client" });
  await w.fetch("/none");
  sv.options.sendClientVersion = (url) => url.pathname.startsWith("/api/");
  await w.fetch("/api/yes");
  await w.fetch("/other");
  assert.deepEqual(
    srv.requests.map((r) => [r.url, r.headers["x-client"]]),
    [
      ["/none", undefined],
      ["/api/yes", "41"],
      ["/other", undefined],
    ],
  );
  assert.deepEqual(sv.headersFor("http://elsewhere.test/api/x"), { "X-Client": "41" });
  sv.options.sendClientVersion = true;
  assert.deepEqual(sv.headersFor("http://elsewhere.test/x"), { "X-Client": "41" });
});

test("no client header while the baseline is unknown", async () => {
  const srv = await versionServer("3");
  const { w } = page(srv.url);
  const sv = start({ window: w });
  assert.deepEqual(sv.headersFor("/x"), {});
  await w.fetch("/first");
  await w.fetch("/second");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], undefined);
  assert.equal(srv.requests[1].headers["x-spa-client-version"], "3");
});

// -- policies and route changes ------------------------------------------------------

test("next-navigation: nothing on learning; the next route change loads the target URL", async () => {
  const srv = await versionServer("2; policy=next-navigation");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const seen = record(sv);
  await w.fetch("/api");
  assert.equal(sv.latest.epoch, 2);
  assert.deepEqual(loads, []);
  w.history.replaceState({ scroll: 1 }, "", w.location.href); // same URL: not a route change
  assert.deepEqual(loads, []);
  w.history.pushState({}, "", "/target?q=1");
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/target?q=1" }]);
  assert.deepEqual(
    seen.map(([type, d]) => [type, d.reason]),
    [
      ["update", undefined],
      ["reload", "navigation"],
    ],
  );
});

for (const event of ["popstate", "hashchange"]) {
  test(`next-navigation: ${event} is a route change`, async () => {
    const srv = await versionServer("2");
    const { w, loads } = page(srv.url, meta("1"));
    start({ window: w });
    await w.fetch("/api");
    // What the browser does on "back" across hash entries: the URL changes, then both
    // events fire.
    w.location.hash = "#elsewhere";
    w.dispatchEvent(new w.Event(event));
    w.dispatchEvent(new w.Event(event == "popstate" ? "hashchange" : "popstate"));
    assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/#elsewhere" }], "one reload for both events");
  });
}

test("prompt: fires the prompt event and never reloads on its own", async () => {
  const srv = await versionServer("2; label=b; policy=prompt");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w, idle: 0 });
  const seen = record(sv);
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  w.dispatchEvent(new w.Event("popstate"));
  assert.deepEqual(loads, []);
  assert.deepEqual(
    seen.map(([type, d]) => [type, d.label]),
    [
      ["update", "b"],
      ["prompt", "b"],
    ],
  );
  assert.equal(sv.reload(), true, "the toast's button reloads");
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/next" }]);
});

test("silent: records the version, nothing else", async () => {
  const srv = await versionServer("2; policy=silent");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  assert.equal(sv.latest.policy, "silent");
  assert.deepEqual(loads, []);
});

test("an unknown future policy behaves like next-navigation", async () => {
  const srv = await versionServer("2; policy=gentle");
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  assert.equal(loads.length, 1);
});

test("immediate, visible tab: reloads once the user is idle, without a route change", async () => {
  const srv = await versionServer("2; policy=immediate");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = watchIdle(start({ window: w, idle: 30 }));
  const seen = record(sv);
  await w.fetch("/api");
  assert.deepEqual(loads, [], "not in the same instant: the user may be typing");
  await until(() => loads.length);
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/" }]);
  assert.equal(seen.at(-1)[1].reason, "idle");
});

test("immediate: each input restarts the idle wait", async () => {
  const srv = await versionServer("2; policy=immediate");
  const { w, loads } = page(srv.url, meta("1"));
  watchIdle(start({ window: w, idle: 150 }));
  await w.fetch("/api");
  const started = Date.now();
  // Keep typing for 4 idle periods; no reload may land in between.
  while (Date.now() - started < 600) {
    w.document.body.dispatchEvent(new w.KeyboardEvent("keydown", { bubbles: true }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(loads, [], "reloaded while the user was typing");
  }
  await until(() => loads.length);
});

test("immediate: a hidden tab reloads at once, and so does immediate: true", async () => {
  const srv = await versionServer("2; policy=immediate");
  const hidden = page(srv.url, meta("1"));
  Object.defineProperty(hidden.w.document, "hidden", { get: () => true });
  start({ window: hidden.w });
  await hidden.w.fetch("/api");
  assert.deepEqual(hidden.loads, [{ how: "reload", href: srv.url + "/" }]);

  const eager = page(srv.url, meta("1"));
  start({ window: eager.w, immediate: true });
  await eager.w.fetch("/api");
  assert.equal(eager.loads.length, 1);
});

test("each policy also fires an event of its own name", async () => {
  const srv = await versionServer();
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w, idle: 3_600_000 });
  const seen = record(sv, ["immediate", "next-navigation", "silent", "prompt"]);
  for (const [epoch, policy] of [[2, "silent"], [3, "next-navigation"], [4, "prompt"], [5, "immediate"]]) {
    srv.state.version = `${epoch}; policy=${policy}`;
    await w.fetch("/api");
  }
  assert.deepEqual(
    seen.map(([type, v]) => [type, v.epoch]),
    [
      ["silent", 2],
      ["next-navigation", 3],
      ["prompt", 4],
      ["immediate", 5],
    ],
  );
});

test("immediate: a tab that becomes hidden reloads then (watchIdle)", async () => {
  const srv = await versionServer("2; policy=immediate");
  const { w, loads } = page(srv.url, meta("1"));
  watchIdle(start({ window: w }));
  await w.fetch("/api");
  assert.deepEqual(loads, []);
  Object.defineProperty(w.document, "hidden", { get: () => true });
  w.document.dispatchEvent(new w.Event("visibilitychange"));
  assert.equal(loads.length, 1);
});

// -- navigate() hook -------------------------------------------------------------------

test("navigate(url): false while fresh; when stale, loads url and returns true", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  assert.equal(sv.navigate("/a"), false);
  await w.fetch("/api");
  assert.equal(sv.navigate("/b#tab"), true);
  assert.deepEqual(loads, [{ how: "assign", href: srv.url + "/b#tab" }], "assigned: no pushState for the router to see");
});

test("navigate() to a #hash of this page moves there, then loads it", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  await w.fetch("/api");
  assert.equal(sv.navigate("/#/settings"), true);
  assert.deepEqual(loads, [
    { how: "assign", href: srv.url + "/#/settings" },
    { how: "reload", href: srv.url + "/#/settings" },
  ]);
});

test("navigate() then the router's own pushState asks beforeReload once", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  let asked = 0;
  const sv = start({ window: w, beforeReload: () => (asked++, false) });
  await w.fetch("/api");
  assert.equal(sv.navigate("/next"), false);
  w.history.pushState({}, "", "/next");
  assert.equal(asked, 1);
  assert.deepEqual(loads, []);
});

// -- veto --------------------------------------------------------------------------

test("a beforeReload veto holds the reload; the following route change reloads", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  let dirty = true;
  const infos = [];
  const sv = start({ window: w, beforeReload: (info) => (infos.push(info), !dirty) });
  const seen = record(sv);
  await w.fetch("/api");
  w.history.pushState({}, "", "/first");
  assert.deepEqual(loads, []);
  assert.equal(w.location.pathname, "/first", "the SPA navigation went ahead");
  dirty = false;
  w.history.pushState({}, "", "/second");
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/second" }]);
  assert.deepEqual(
    infos.map((i) => [i.epoch, i.reason, i.url]),
    [
      [2, "navigation", srv.url + "/first"],
      [2, "navigation", srv.url + "/second"],
    ],
  );
  assert.deepEqual(
    seen.map(([type]) => type),
    ["update", "veto", "reload"],
  );
});

// -- loop guard ------------------------------------------------------------------------

test("loop guard: never twice for one epoch in a tab", async () => {
  const srv = await versionServer("2");
  const { w, loads } = page(srv.url, meta("1"));
  w.sessionStorage.setItem("spa-version:reloads", JSON.stringify([[2, Date.now() - 1000]]));
  const sv = start({ window: w });
  const seen = record(sv);
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  assert.deepEqual(loads, []);
  assert.deepEqual(
    seen.map(([type, d]) => [type, d.epoch]),
    [
      ["update", 2],
      ["blocked", 2],
    ],
  );
});

test("loop guard: at most maxReloads per reloadWindow, counted in sessionStorage", async () => {
  const srv = await versionServer();
  // A tab that keeps seeing newer epochs: each "page load" is a fresh window sharing the
  // tab's sessionStorage, as a real reload would.
  let storage = null;
  const outcomes = [];
  for (let epoch = 2; epoch <= 6; epoch++) {
    const { w, loads } = page(srv.url, meta(epoch - 1));
    if (storage) w.sessionStorage.setItem("spa-version:reloads", storage);
    const sv = start({ window: w });
    const seen = record(sv);
    srv.state.version = String(epoch);
    await w.fetch("/api");
    w.history.pushState({}, "", "/p" + epoch);
    outcomes.push(loads.length ? "reload" : seen.at(-1)[0]);
    storage = w.sessionStorage.getItem("spa-version:reloads");
  }
  assert.deepEqual(outcomes, ["reload", "reload", "reload", "blocked", "blocked"]);
});

test("loop guard: reloads older than reloadWindow no longer count", async () => {
  const srv = await versionServer("9");
  const { w, loads } = page(srv.url, meta("8"));
  const long = Date.now() - 11 * 60 * 1000;
  w.sessionStorage.setItem("spa-version:reloads", JSON.stringify([[5, long], [6, long], [7, long]]));
  start({ window: w });
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  assert.equal(loads.length, 1);
});

test("the loop guard's limits are options", async () => {
  const srv = await versionServer("3");
  const { w, loads } = page(srv.url, meta("2"));
  w.sessionStorage.setItem("spa-version:reloads", JSON.stringify([[1, Date.now()]]));
  const sv = start({ window: w, maxReloads: 1 });
  await w.fetch("/api");
  w.history.pushState({}, "", "/next");
  assert.deepEqual(loads, []);
  sv.options.maxReloads = 2;
  w.history.pushState({}, "", "/again");
  assert.equal(loads.length, 1);
});

// -- 409 -------------------------------------------------------------------------------

test("409 with X-SPA-Reload: * reloads at once, veto or not", async () => {
  const srv = await versionServer("2; policy=prompt; min=2");
  srv.state.status = 409;
  srv.state.extra = { "X-SPA-Reload": "*" };
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w, beforeReload: () => false });
  const seen = record(sv);
  const res = await w.fetch("/api/save", { method: "POST", body: "{}" });
  assert.equal(res.status, 409, "the app still gets its response");
  assert.deepEqual(loads, [{ how: "reload", href: srv.url + "/" }]);
  assert.equal(seen.at(-1)[1].reason, "stale-client");
});

test("409 with X-SPA-Reload: <path> loads that path", async () => {
  const srv = await versionServer("2");
  srv.state.status = 409;
  srv.state.extra = { "X-SPA-Reload": "/login?next=1" };
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  await w.fetch("/api/save", { method: "POST" });
  assert.deepEqual(loads, [{ how: "assign", href: srv.url + "/login?next=1" }]);
});

test("409 with a cross-origin X-SPA-Reload is assigned, not pushed", async () => {
  const srv = await versionServer("2");
  srv.state.status = 409;
  srv.state.extra = { "X-SPA-Reload": "http://login.example.test/" };
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  await w.fetch("/api/save", { method: "POST" });
  assert.deepEqual(loads, [{ how: "assign", href: "http://login.example.test/" }]);
});

test("several triggers at once load the page once", async () => {
  const srv = await versionServer("2; min=2");
  srv.state.status = 409;
  srv.state.extra = { "X-SPA-Reload": "*" };
  const { w, loads } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const seen = record(sv);
  await Promise.all([w.fetch("/a", { method: "POST" }), w.fetch("/b", { method: "POST" })]);
  w.history.pushState({}, "", "/next");
  assert.equal(loads.length, 1);
  assert.deepEqual(
    seen.filter(([type]) => type != "update").map(([type]) => type),
    ["reload"],
    "no 'blocked' for the second trigger: the page is already leaving",
  );
});

test("a 409 without X-SPA-Reload is the app's own conflict: no reload", async () => {
  const srv = await versionServer("1");
  srv.state.status = 409;
  const { w, loads } = page(srv.url, meta("1"));
  start({ window: w });
  await w.fetch("/api/save", { method: "POST" });
  assert.deepEqual(loads, []);
});

// -- idempotence -------------------------------------------------------------------------

test("start() twice returns the running instance, merges options and wraps fetch once", async () => {
  const srv = await versionServer("2");
  const { w } = page(srv.url, meta("1"));
  const first = start({ window: w });
  const wrapped = w.fetch;
  const second = start({ window: w, idle: 5 });
  assert.equal(second, first);
  assert.equal(w.fetch, wrapped);
  assert.equal(first.options.idle, 5);
  await w.fetch("/api");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1", "one header, not two");
});

test("on() returns an unsubscribe function", async () => {
  const srv = await versionServer("2");
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  let calls = 0;
  const off = sv.on("update", () => calls++);
  off();
  await w.fetch("/api");
  assert.equal(calls, 0);
});
