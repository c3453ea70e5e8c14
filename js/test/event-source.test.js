// watchEventSource: the drain's last event on a server-sent event stream.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { start, watchEventSource } from "../src/index.js";
import { cleanup, meta, page, serve } from "./helpers.js";

afterEach(cleanup);

test("watchEventSource: the spa-version event marks the tab stale; other events don't", async () => {
  const srv = await serve(() => ({ status: 200, headers: {} }));
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const es = new w.EventTarget(); // anything with addEventListener, as an EventSource has
  assert.equal(watchEventSource(es, sv), es);
  const send = (type, data) => es.dispatchEvent(new w.MessageEvent(type, { data }));
  send("message", "3; label=not-ours");
  send("tick", "3");
  assert.equal(sv.latest, null);
  send("spa-version", "not a version");
  assert.equal(sv.latest, null);
  send("spa-version", "3; label=b7c8; policy=next-navigation; slot=green");
  assert.deepEqual(sv.latest, { epoch: 3, label: "b7c8", policy: "next-navigation", min: null, slot: "green" });
  // An older or equal epoch (a stream of a process that has not heard of the bump) is ignored.
  send("spa-version", "2; label=old");
  assert.equal(sv.latest.epoch, 3);
  await w.fetch("/marker");
  assert.deepEqual(
    srv.requests.map((r) => r.url),
    ["/marker"],
    "the event names its version: the server is asked nothing",
  );
});
