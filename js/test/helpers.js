// Test support: a real HTTP server on 127.0.0.1 (node:http) and happy-dom windows that
// fetch from it. Only location.reload/assign are replaced, to record what the helper
// would load instead of navigating away.
import { createServer } from "node:http";
import { Window } from "happy-dom";

const open = [];

/**
 * A server answering every request with `respond(req)` -> { status, headers, body }
 * (default: 200, no headers). `requests` records each request's method, url and headers.
 */
export async function serve(respond = () => ({})) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    const { status = 200, headers = {}, body = "ok" } = respond(req) || {};
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const close = () => new Promise((resolve) => server.close(resolve));
  open.push(close);
  return { url, requests, close };
}

// Node's BroadcastChannel works across instances in one process; unref() so an open
// channel does not keep the test process alive, and close each one at cleanup.
class TestChannel extends BroadcastChannel {
  constructor(name) {
    super(name);
    this.unref();
    open.push(() => this.close());
  }
}

/**
 * A happy-dom window at `url` with `head` as its <head> HTML. `loads` records each page
 * load the helper asks for: { how: "reload" | "assign", href }.
 */
export function page(url, head = "", { scripts = false } = {}) {
  // `scripts`: run <script> elements (happy-dom leaves that off unless asked).
  // Only this repository's own build is ever evaluated, so happy-dom's warning about
  // untrusted code in a VM context does not apply.
  const settings = { enableJavaScriptEvaluation: scripts, suppressInsecureJavaScriptEnvironmentWarning: true };
  const w = new Window({ url: url + "/", settings });
  w.document.head.innerHTML = head;
  w.BroadcastChannel = TestChannel;
  const loads = [];
  w.location.reload = () => loads.push({ how: "reload", href: w.location.href });
  w.location.assign = (href) => {
    loads.push({ how: "assign", href });
    // As a browser does: a URL that differs in its #hash alone is a same-document move
    // (the URL changes, nothing loads); any other is a page load, recorded only.
    const doc = (u) => new URL(u, w.location.href).href.split("#")[0];
    if (doc(href) == doc(w.location.href)) w.happyDOM.setURL(new URL(href, w.location.href).href);
  };
  open.push(() => w.happyDOM.close());
  return { w, loads };
}

export const meta = (value) => `<meta name="spa-version" content="${value}">`;

/** Close every server, channel and window opened since the last call. */
export async function cleanup() {
  while (open.length) await open.pop()();
}

/** Poll `predicate` until truthy (bounded: fails after `timeout` ms). */
export async function until(predicate, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeout} ms: ${predicate}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Record every event of `types` from `sv` into an array of [type, detail]. */
export function record(sv, types = ["update", "prompt", "reload", "veto", "blocked"]) {
  const seen = [];
  for (const type of types) sv.on(type, (detail) => seen.push([type, detail]));
  return seen;
}
