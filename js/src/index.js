// spa-version: learn that a new deploy is live and move this tab to it at the right moment.
// The wire format is docs/protocol.md; the behaviour and its reasons are issue 3 and
// docs/js.md. `start()` is the core (budget: 1.5 KB min+gzip, scripts/size.js); the
// watch*() helpers below it are opt-in for bundler users and all on in the script-tag
// build. Terse on purpose: the comments carry the reasons.

// Symbol.for, not Symbol(): an ESM copy and the script-tag copy on one page must find each
// other, so fetch and history are wrapped once per window however often start() runs.
const KEY = Symbol.for("spa-version");
// 15 digits keep the epoch exact in a double (docs/protocol.md rejects longer ones too).
const EPOCH = /^\d{1,15}$/;
// sessionStorage key of the loop guard's log: [[epoch, time], ...], oldest first.
const LOG = "spa-version:reloads";

/**
 * Parse an `X-SPA-Version` value (or a `<meta name="spa-version">` content, or a 1012
 * close reason: all share one format). Returns null for anything invalid.
 */
export function parseVersion(value) {
  const head = /^\s*(\d{1,15})\s*(;|$)/.exec(value);
  if (!head || !+head[1]) return null;
  const v = { epoch: +head[1], label: null, policy: "next-navigation", min: null };
  // Unknown keys are ignored so the format can grow; whitespace around ";" and "=" too.
  for (const [, key, val] of String(value).matchAll(/;\s*(label|policy|min)\s*=\s*([^;\s]*)/g)) {
    if (key != "min") v[key] = val;
    else if (EPOCH.test(val)) v.min = +val || null;
  }
  return v;
}

/**
 * Start watching for new versions in this window. Idempotent: a later call merges its
 * options into the running instance and returns it. Options and events: index.d.ts.
 */
export function start(options = {}) {
  const w = options.window || globalThis;
  const running = w[KEY];
  if (running) return Object.assign(running.options, options), running;

  // Defaults are filled in where used (`?? value`): smaller than a defaults object.
  const o = { ...options };
  const d = w.document;
  const l = w.location;
  const h = w.history;
  const push = h.pushState;
  const listeners = {};
  const meta = d.querySelector("meta[name=spa-version]");
  // Baseline: the explicit option, else the server-rendered meta tag, else (see see()) the
  // first response seen.
  let base = (parseVersion(o.baseline ?? (meta && meta.content)) || 0).epoch;
  let latest = null;
  let routed = l.href;
  let leaving, timer;
  const known = () => (latest ? latest.epoch : base);
  const immediate = () => latest && latest.policy == "immediate";
  const abs = (url) => new URL(url, l.href);

  // An app callback that throws (a listener, beforeReload) must not break the app's
  // fetch() or our bookkeeping: its error is reported from a task of its own.
  const safely = (fn) => {
    try {
      fn();
    } catch (e) {
      w.setTimeout(() => {
        throw e;
      });
    }
  };
  const emit = (type, detail) => {
    for (const fn of listeners[type] || []) safely(() => fn(detail));
  };

  // Learn a header value; `response`: it came from an HTTP response, the only source that
  // may set a missing baseline (a version from a socket or another tab can't be compared
  // to nothing).
  const see = (value, response) => {
    const v = parseVersion(value);
    if (!v) return;
    // No baseline yet: the first response becomes it (docs/js.md: the race this opens).
    if (!base) return void (response && (base = v.epoch));
    // Only a strictly newer epoch counts: a cached or 304 response, or a server that has
    // not heard of the bump yet, may carry an older one (docs/protocol.md).
    if (v.epoch <= known()) return;
    latest = v;
    emit("update", v);
    // Then an event named after the policy: "prompt" is the one an app shows a toast for.
    emit(v.policy, v);
    if (immediate()) o.immediate || d.hidden ? reload("immediate") : idle();
  };

  const observe = (headers, status) => {
    const get = (name) => (headers.get ? headers.get(name) : headers[name.toLowerCase()] || headers[name]);
    see(get(o.header || "X-SPA-Version"), 1);
    // A 409 carrying the reload instruction: reload now, to the location given; only the
    // loop guard may stop it (docs/protocol.md, "Stale clients").
    const to = status == 409 && get("X-SPA-Reload");
    if (to) reload("stale-client", to == "*" ? "" : to, 1);
  };

  // next-navigation and immediate (and any policy a newer server invents) reload at a
  // route change; prompt and silent leave that to the app.
  const due = () => latest && !/^(prompt|silent)$/.test(latest.policy);

  // One decision per target URL: popstate and hashchange both fire for one "back" across
  // hash entries, and a router may call navigate() and then pushState.
  const routeTo = (url) => {
    const href = abs(url).href;
    if (href == routed) return;
    routed = href;
    return due() && reload("navigation", url);
  };
  const route = () => routeTo(l.href);

  function reload(reason, url, forced) {
    if (leaving) return true;
    const epoch = known();
    const info = { epoch, reason, url: abs(url || l.href).href };
    if (!forced && o.beforeReload && o.beforeReload(info) === false) return emit("veto", info), false;
    // Loop guard (Next.js and Nuxt users hit reload loops): one reload per epoch per tab,
    // and at most maxReloads per reloadWindow. sessionStorage is per tab and survives the
    // reload; where it is unavailable the guard can't count and lets the reload happen.
    const t = Date.now();
    let log = [];
    try {
      // The spread throws (and log stays []) unless the stored value is iterable.
      log = [...JSON.parse(w.sessionStorage[LOG])];
    } catch {}
    if (log.some((x) => x[0] >= epoch) || log.filter((x) => x[1] > t - (o.reloadWindow ?? 6e5)).length >= (o.maxReloads ?? 3))
      return emit("blocked", info), false;
    try {
      w.sessionStorage[LOG] = JSON.stringify([...log.slice(-9), [epoch, t]]);
    } catch {}
    emit("reload", info);
    leaving = 1;
    // pushState + reload rather than assign(): assign() to a URL that differs only in its
    // #hash does not load the page, which hash routers need. A cross-origin URL can't be
    // pushed, so that one is assigned.
    if (url) {
      try {
        push.call(h, null, "", url);
      } catch {
        return l.assign(url), true;
      }
    }
    l.reload();
    return true;
  }

  // Policy immediate, tab visible: reload once the user has been idle for o.idle ms, so a
  // reload never lands in the middle of typing or clicking. Every input restarts the wait.
  const idle = () => {
    w.clearTimeout(timer);
    // timer = 0 once it fired: after a veto, wait for the next route change (or hidden tab)
    // instead of asking again after every pause.
    timer = w.setTimeout(() => (timer = 0) || (immediate() && reload("idle")), o.idle ?? 6e4);
  };
  // pointerdown covers touch; scroll is captured (it doesn't bubble) and covers reading.
  for (const type of ["pointerdown", "keydown", "scroll"]) w.addEventListener(type, () => timer && idle(), true);
  // A hidden tab loses nothing visible by reloading.
  d.addEventListener("visibilitychange", () => d.hidden && immediate() && reload("hidden"));

  // The request header carrying our epoch, if a request to `url` should have it. Same
  // origin only by default: a custom header makes a cross-origin request preflighted.
  const headersFor = (url) => {
    const s = o.sendClientVersion;
    const u = abs(url);
    return base && s !== false && (s ? s === true || s(u) : u.origin == l.origin)
      ? { [o.clientHeader || "X-SPA-Client-Version"]: "" + base }
      : {};
  };

  const fetch = w.fetch;
  w.fetch = function (input, init) {
    try {
      const add = headersFor(input.url || "" + input); // a Request, a URL or a string
      for (const name in add) {
        // Headers given in init replace a Request's own, so start from those.
        const headers = new w.Headers((init && init.headers) || input.headers);
        headers.set(name, add[name]);
        init = { ...init, headers };
      }
    } catch {}
    // The very Response object the original fetch gives (bodies and streams untouched);
    // its errors and aborts reject as before.
    return fetch.call(this, input, init).then((res) => (safely(() => observe(res.headers, res.status)), res));
  };

  // Route changes: what routers call (React Router, Vue Router's web history and hash
  // modes) and what the back button and #links fire.
  for (const m of ["pushState", "replaceState"]) {
    const orig = h[m];
    h[m] = function () {
      const r = orig.apply(this, arguments);
      safely(route); // a throwing beforeReload must not make the router's pushState throw
      return r;
    };
  }
  w.addEventListener("popstate", route);
  w.addEventListener("hashchange", route);

  return (w[KEY] = {
    options: o,
    get baseline() {
      return base || null;
    },
    get latest() {
      return latest;
    },
    on(type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
      // A new array, not splice(): an emit() in progress keeps iterating the old one.
      return () => (listeners[type] = listeners[type].filter((f) => f != fn));
    },
    observe,
    headersFor,
    offer: see, // (its second argument, "from a response", stays unset)
    navigate: (url) => !!routeTo(url),
    reload: (url) => reload("manual", url),
  });
}

const win = (sv) => sv.options.window || globalThis;
// Each helper attaches once per instance, however often it is called (startAll() twice).
const once = (sv, name, attach) => (sv[name] || attach((sv[name] = win(sv))), sv);

/**
 * Ask the server now: fetch the version endpoint (`options.endpoint`, default
 * `/__spa-version`) through the wrapped fetch, which observes its header like any other
 * response. Resolves to whether a newer version is known; never rejects.
 */
export function check(sv = start()) {
  const stale = () => !!sv.latest;
  return win(sv).fetch(sv.options.endpoint || "/__spa-version", { cache: "no-store" }).then(stale, stale);
}

/**
 * Also observe `XMLHttpRequest` (axios' default adapter, older libraries): the same
 * request header is sent and the same response header read as for fetch.
 */
export function watchXHR(sv = start()) {
  return once(sv, "_xhr", (w) => {
    const X = w.XMLHttpRequest.prototype;
    const { open, send } = X;
    const urls = new WeakMap();
    X.open = function (method, url) {
      urls.set(this, url);
      return open.apply(this, arguments);
    };
    X.send = function () {
      try {
        const add = sv.headersFor(urls.get(this));
        for (const name in add) this.setRequestHeader(name, add[name]);
      } catch {}
      // getAllResponseHeaders(), not getResponseHeader(): Chromium logs an error for each
      // header a CORS response does not expose; this lists only the readable ones.
      this.addEventListener("loadend", () => {
        const all = this.getAllResponseHeaders();
        const get = (name) => (all.match(RegExp(`^${name}:[ \t]*([^\r\n]*)`, "im")) || [])[1];
        sv.observe({ get }, this.status);
      });
      return send.apply(this, arguments);
    };
  });
}

/**
 * Share news between the tabs of this origin (BroadcastChannel): when one tab learns of a
 * newer epoch, the others learn it too and move by their own policy. Off where the
 * browser has no BroadcastChannel, or with `options.channel: false`.
 */
export function watchTabs(sv = start()) {
  return once(sv, "_tabs", (w) => {
    const name = sv.options.channel;
    if (!w.BroadcastChannel || name === false) return;
    const bc = new w.BroadcastChannel(name || "spa-version");
    let incoming;
    bc.onmessage = (e) => {
      incoming = 1;
      sv.offer(e.data);
      incoming = 0;
    };
    // Sent as a header value, so the other tab runs it through the same parser as a
    // response; news that came from the channel is not echoed back into it.
    sv.on("update", (v) => {
      if (!incoming)
        bc.postMessage(`${v.epoch}; policy=${v.policy}${v.label ? "; label=" + v.label : ""}${v.min ? "; min=" + v.min : ""}`);
    });
  });
}

/**
 * When a hidden tab becomes visible, fetch the version endpoint, at most once per
 * `options.focusCheck` ms (default 60 000); `focusCheck: false` turns it off.
 */
export function watchFocus(sv = start()) {
  return once(sv, "_focus", (w) => {
    const d = w.document;
    let last = Date.now();
    d.addEventListener("visibilitychange", () => {
      const every = sv.options.focusCheck;
      if (!d.hidden && every !== false && Date.now() - last >= (every ?? 6e4)) {
        last = Date.now();
        check(sv);
      }
    });
  });
}

/**
 * Treat failed code loads as a hint that this tab's build is gone from the server: a
 * script or stylesheet load error, a failed dynamic import(), or Vite's preload error
 * triggers a version check, and if a newer version is live, a reload (beforeReload and
 * the loop guard still apply).
 */
export function watchChunks(sv = start()) {
  return once(sv, "_chunks", (w) => {
    const recover = () => check(sv).then((stale) => stale && sv.reload());
    // Resource errors don't bubble, so listen in the capture phase; window's own error
    // events (script exceptions) have no tagName and are ignored.
    w.addEventListener("error", (e) => /^(SCRIPT|LINK)$/.test(e.target.tagName) && recover(), true);
    // Chromium: "Failed to fetch dynamically imported module", Firefox: "error loading
    // dynamically imported module", Safari: "Importing a module script failed", webpack:
    // "Loading chunk 7 failed".
    w.addEventListener(
      "unhandledrejection",
      (e) => /dynamically imported|module script|chunk/i.test(e.reason && e.reason.message) && recover(),
    );
    w.addEventListener("vite:preloadError", recover);
  });
}

/**
 * Watch a WebSocket for the drain close: code 1012 (Service Restart) whose reason is a
 * header value announces the new release (docs/protocol.md, "Websocket drain"). Other
 * closes say nothing about versions. Returns `ws`.
 */
export function watchSocket(ws, sv = start()) {
  ws.addEventListener("close", (e) => e.code == 1012 && sv.offer(e.reason));
  return ws;
}

/**
 * `url` as an absolute ws:/wss: URL carrying this tab's epoch as `spa-client-version`:
 * browsers can't set headers on a websocket handshake (docs/protocol.md).
 */
export function socketUrl(url, sv = start()) {
  const u = new URL(url, win(sv).location.href);
  u.protocol = u.protocol.replace("http", "ws");
  if (sv.baseline) u.searchParams.set("spa-client-version", sv.baseline);
  return u.href;
}

/** Everything on: start() plus every watch*() helper (what the script-tag build does). */
export function startAll(options) {
  return watchChunks(watchFocus(watchTabs(watchXHR(start(options)))));
}
