// Pinning (docs/protocol.md, "Pinning"): the slot that served the page comes with the
// baseline and goes back as X-SPA-Pin on the requests that carry the client epoch.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { parseVersion, socketUrl, start, watchXHR } from "../src/index.js";
import { cleanup, meta, page, serve } from "./helpers.js";

afterEach(cleanup);

async function slotServer(version) {
  const state = { version };
  const srv = await serve(() => ({ headers: state.version ? { "X-SPA-Version": state.version } : {} }));
  return Object.assign(srv, { state });
}

const pins = (srv) => srv.requests.map((r) => r.headers["x-spa-pin"]);

test("parseVersion reads slot=, and leaves it out when absent", () => {
  assert.equal(parseVersion("7; label=a; policy=prompt; slot=blue").slot, "blue");
  assert.equal(parseVersion(" 7 ;slot = green ; label=a").slot, "green");
  assert.equal("slot" in parseVersion("7; label=a"), false);
});

test("the slot of the meta tag is sent as X-SPA-Pin with the client epoch", async () => {
  const srv = await slotServer("8; label=b; policy=next-navigation; slot=green");
  const { w } = page(srv.url, meta("7; label=a; policy=next-navigation; slot=blue"));
  const sv = start({ window: w });
  assert.equal(sv.slot, "blue");
  await w.fetch("/a");
  await w.fetch("/b");
  // Later responses from another slot (the new build after a bump) change nothing.
  assert.deepEqual(pins(srv), ["blue", "blue"]);
  assert.equal(srv.requests[1].headers["x-spa-client-version"], "7");
  assert.equal(sv.slot, "blue");
  assert.deepEqual(sv.headersFor(srv.url + "/x"), { "X-SPA-Client-Version": "7", "X-SPA-Pin": "blue" });
});

test("without a meta tag, the slot comes from the response that set the baseline", async () => {
  const srv = await slotServer("4; label=a; slot=blue");
  const { w } = page(srv.url);
  const sv = start({ window: w });
  assert.equal(sv.slot, null);
  await w.fetch("/first"); // no baseline yet: no headers sent
  srv.state.version = "5; label=b; slot=green";
  await w.fetch("/second");
  await w.fetch("/third");
  assert.deepEqual(pins(srv), [undefined, "blue", "blue"]);
  assert.equal(sv.baseline, 4);
  assert.equal(sv.latest.epoch, 5);
});

test("a baseline option carries a slot too; one without a slot pins nothing", async () => {
  const srv = await slotServer("4; label=a; slot=blue");
  const a = page(srv.url, meta("3; slot=green"));
  assert.equal(start({ window: a.w, baseline: "9; label=x; slot=b-2" }).slot, "b-2");
  const b = page(srv.url, meta("3; slot=green"));
  const sv = start({ window: b.w, baseline: 9 });
  assert.equal(sv.slot, null);
  await b.w.fetch("/x");
  assert.deepEqual(pins(srv), [undefined]);
});

test("a slot that is not a token (1-32 of A-Z a-z 0-9 _ . -) pins nothing", async () => {
  for (const bad of ["", "blue!", "x".repeat(33), "bl%75e", "grün", "a/b"]) {
    const srv = await slotServer(null);
    const { w } = page(srv.url, meta(`3; label=a; slot=${bad}`));
    const sv = start({ window: w });
    assert.equal(sv.slot, null, bad);
    await w.fetch("/x");
    assert.deepEqual(pins(srv), [undefined], bad);
    assert.equal(srv.requests[0].headers["x-spa-client-version"], "3", "the epoch is still sent");
  }
  const srv = await slotServer(null);
  const { w } = page(srv.url, meta(`3; slot=${"x".repeat(32)}`));
  assert.equal(start({ window: w }).slot, "x".repeat(32));
});

test("cross-origin requests carry no pin unless sendClientVersion allows them", async () => {
  const own = await slotServer(null);
  const other = await slotServer(null);
  const { w } = page(own.url, meta("3; slot=blue"));
  const sv = start({ window: w });
  assert.deepEqual(sv.headersFor(other.url + "/x"), {});
  sv.options.sendClientVersion = (u) => u.origin == other.url;
  assert.deepEqual(sv.headersFor(other.url + "/x"), { "X-SPA-Client-Version": "3", "X-SPA-Pin": "blue" });
  sv.options.sendClientVersion = false;
  assert.deepEqual(sv.headersFor(own.url + "/x"), {});
});

test("XMLHttpRequest carries the pin too; a websocket URL never does", async () => {
  const srv = await slotServer(null);
  const { w } = page(srv.url, meta("3; slot=blue"));
  const sv = watchXHR(start({ window: w }));
  await new Promise((resolve) => {
    const xhr = new w.XMLHttpRequest();
    xhr.open("GET", "/xhr");
    xhr.addEventListener("loadend", resolve);
    xhr.send();
  });
  assert.deepEqual(pins(srv), ["blue"]);
  const url = new URL(socketUrl("/ws", sv));
  assert.deepEqual([...url.searchParams.keys()], ["spa-client-version"]);
});
