// watchAxios() with real axios: an `axios.create()` instance (what generated API clients
// use) and the global axios, each wired on its own, against a real HTTP server.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import axios from "axios";
import { start, watchAxios } from "../src/index.js";
import { cleanup, meta, page, record, serve } from "./helpers.js";

afterEach(cleanup);

const server = () =>
  serve((req) =>
    req.url.startsWith("/api/save")
      ? { status: 409, headers: { "X-SPA-Version": "3; min=3", "X-SPA-Reload": "*" } }
      : { headers: { "X-SPA-Version": "2; policy=prompt" } },
  );

test("an axios.create() instance sends the epoch, learns the version, and a 409 reloads", async () => {
  const srv = await server();
  const { w, loads } = page(srv.url, meta("1; slot=blue"));
  const sv = start({ window: w });
  const seen = record(sv, ["update", "reload"]);
  // The instance knows only its baseURL; its requests go through axios' own adapter.
  const api = watchAxios(axios.create({ baseURL: srv.url + "/api" }), sv);
  const res = await api.get("/items");
  assert.equal(res.status, 200);
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1");
  assert.equal(srv.requests[0].headers["x-spa-pin"], "blue");
  assert.equal(sv.latest.epoch, 2);

  await assert.rejects(api.post("/save", { title: "draft" }), (e) => e.response.status === 409);
  assert.equal(loads.length, 1);
  const info = seen.at(-1)[1];
  assert.equal(info.reason, "stale-client");
  assert.equal(info.request.method, "post");
  assert.equal(info.request.url, srv.url + "/api/save");
  assert.equal(info.request.data, JSON.stringify({ title: "draft" }));
});

test("an instance without a baseURL is wired the same way; a cross-origin one sends no epoch", async () => {
  const srv = await server();
  const other = await server();
  const { w } = page(srv.url, meta("1"));
  const sv = start({ window: w });
  const ours = axios.create();
  assert.equal(watchAxios(ours, sv), ours, "returns the instance");
  await ours.get(srv.url + "/api/items");
  assert.equal(srv.requests[0].headers["x-spa-client-version"], "1");
  await watchAxios(axios.create({ baseURL: other.url }), sv).get("/api/items");
  assert.equal(other.requests[0].headers["x-spa-client-version"], undefined, "another origin: none");
  assert.equal(sv.latest.epoch, 2, "its answer is observed all the same");
});
