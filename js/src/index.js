// spa-version: learn that a new deploy is live and move this tab to it at the right moment.
// The wire format is docs/protocol.md; the behaviour and its reasons are docs/js.md.
// `start()` wires the named parts below together for one window; the watch*() helpers
// after it are opt-in for bundler users and all on in the script-tag build. Size budgets:
// scripts/size.js. Terse on purpose: the comments carry the reasons.
import { defaults } from "./defaults.js";
export { watchEventSource } from "./event-source.js";

// Symbol.for, not Symbol(): an ESM copy and the script-tag copy on one page must find each
// other, so fetch and history are wrapped once per window however often start() runs.
const KEY = Symbol.for("spa-version");
// sessionStorage key of the loop guard's log: [[epoch, time], ...], oldest first.
const LOG = "spa-version:reloads";

/**
 * Parse an `X-SPA-Version` value (or a `<meta name="spa-version">` content, a drain close
 * reason, a message from another tab: all share one format). A proxy or an XHR may join
 * repeated headers into one comma-separated line (RFC 9110 §5.3): each element is one
 * value, and the one with the highest epoch wins. Returns null if no element is valid;
 * never throws on a string.
 */
export function parseVersion(value) {
  let best = null;
  // Each element: the epoch (15 digits at most keep it exact in a double, and
  // docs/protocol.md rejects longer ones too), then nothing but whitespace up to ";", ","
  // or the end.
  for (const [, epoch, params] of String(value).matchAll(/(?:^|,)\s*(\d{1,15})\s*(?![^;,])([^,]*)/g))
    // (`epoch` is the digit string: ">=" compares it as a number, and is false against
    // undefined, so the first element is taken. Epoch 0 is the unreleased value a server
    // stamps before the first release: a baseline, older than every release.)
    if (!(best?.epoch >= epoch)) {
      best = { epoch: +epoch, label: null, policy: "next-navigation", min: null };
      // Unknown keys are ignored so the format can grow; whitespace around ";" and "=" too.
      // A min is read as an epoch is: not 1-15 digits (or 0), it counts as none.
      for (const [, key, val] of params.matchAll(/;\s*(label|policy|min|slot)\s*=\s*([^;\s]*)/g))
        best[key] = key != "min" ? val : parseVersion(val)?.epoch || null;
    }
  return best;
}

// -- the parts start() wires together -------------------------------------------------------
// Each takes the window it works on, and those that read options the live options object
// `o` (assigning to sv.options changes them), so one page can hold instances for several
// windows (an iframe's, a test DOM's).

/**
 * Run an app callback (a listener, beforeReload): one that throws must not break the app's
 * fetch() or our bookkeeping, so its error is reported from a task of its own.
 */
function safely(w, fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    w.setTimeout(() => {
      throw e;
    });
  }
}

/**
 * Loop guard (Next.js and Nuxt users hit reload loops): may this tab reload for `epoch`
 * now? One reload per epoch per tab, and at most maxReloads per reloadWindow. Returns
 * undefined for yes (logged), true for "no: reloaded for this epoch already" (the page
 * came back still old), false for "no: too many reloads". sessionStorage is per tab and
 * survives the reload; where it is unavailable the guard can't count and says yes.
 */
function mayReload(w, o, epoch) {
  const now = Date.now();
  let log = [];
  try {
    // The spread throws (and log stays []) unless the stored value is iterable.
    log = [...JSON.parse(w.sessionStorage[LOG])];
  } catch {}
  // `?.`: an entry that is not an array (junk) counts for nothing.
  if (log.some((x) => x?.[0] >= epoch)) return true;
  if (log.filter((x) => x?.[1] > now - (o.reloadWindow ?? 6e5)).length >= (o.maxReloads ?? 3)) return false;
  try {
    w.sessionStorage[LOG] = JSON.stringify([...log.slice(-9), [epoch, now]]);
  } catch {}
}

/**
 * fetch wrapping: add `headersFor(url)` to each request, pass each response to `observe`.
 * The app gets the very Response the original fetch gives (bodies and streams untouched);
 * its errors and aborts reject as before.
 */
function wrapFetch(w, headersFor, observe) {
  const fetch = w.fetch;
  // An arrow: a window's own methods need no `this` (Web IDL falls back to the global).
  w.fetch = (input, init) => {
    try {
      const add = headersFor(input.url || "" + input); // a Request, a URL or a string
      // Headers given in init replace a Request's own, so start from those.
      for (const name in add) {
        init = { ...init, headers: new w.Headers(init?.headers || input.headers) };
        init.headers.set(name, add[name]);
      }
    } catch {}
    // The refused request of a 409 goes to the reload event: the app's init (method, body
    // as it gave them) and the URL.
    return fetch(input, init).then(
      (res) => (safely(w, observe, res.headers, res.status, { ...init, url: res.url }), res),
    );
  };
}

/**
 * History wrapping: call `route()` after each possible route change, that is what routers
 * call (pushState and replaceState: React Router, Vue Router's web and hash histories) and
 * what the back button and #links fire.
 */
function wrapHistory(w, route) {
  const h = w.history;
  for (const m of ["pushState", "replaceState"]) {
    const orig = h[m];
    // (Both return undefined.)
    h[m] = (...args) => {
      orig.apply(h, args);
      safely(w, route); // a throwing beforeReload must not make the router's pushState throw
    };
  }
  for (const type of ["popstate", "hashchange"]) w.addEventListener(type, route);
}

/**
 * Start watching for new versions in this window. Idempotent: a later call merges its
 * options into the running instance and returns it. Options and events: index.d.ts.
 *
 * What start() itself keeps is the state and the policy: the baseline, the newest version
 * learned, the listeners, and the decisions when to reload.
 */
export function start(options = {}) {
  const w = options.window || globalThis;
  const running = w[KEY];
  if (running) return Object.assign(running.options, options), running;

  // Defaults are filled in where used (`?? value`): smaller than a defaults object.
  const o = { ...options };
  const l = w.location;
  const listeners = {};
  // The baseline: the explicit option, else the server-rendered meta tag, else the page's
  // own response header as the middleware repeats it in Server-Timing (docs/js.md, "The
  // baseline": same-origin script reads its navigation entry, no template, no request),
  // else (learn()) the first response seen: startAll() asks the endpoint at once for it.
  // Pinning (docs/protocol.md): the slot that served the page comes with the baseline,
  // from the same source, and goes back as X-SPA-Pin. Not a slot token: no pin.
  let base = null;
  let pin;
  const take = (v) => v && ((base = v.epoch), (pin = /^[\w.-]{1,32}$/.test(v.slot) && v.slot));
  take(
    parseVersion(
      o.baseline ??
        w.document.querySelector("meta[name=spa-version]")?.content ??
        w.performance.getEntriesByType("navigation")[0]?.serverTiming?.find((e) => e.name == "spa-version")?.description,
    ),
  );
  let latest = null;
  let routed = l.href;
  let leaving;
  const emit = (type, detail) => {
    for (const fn of listeners[type] || []) safely(w, fn, detail);
  };

  // Learn a header value; `response`: it came from an HTTP response, the only source that
  // may set a missing baseline (a version from a socket or another tab can't be compared
  // to nothing).
  const learn = (value, response) => {
    const v = parseVersion(value);
    // No baseline yet: the first response becomes it (docs/js.md: the race this opens).
    // 0 is one (the unreleased value, docs/protocol.md "Before the first release").
    if (base == null) response && take(v);
    // Only a strictly newer epoch counts: a cached or 304 response, or a server that has
    // not heard of the bump yet, may carry an older one (docs/protocol.md).
    else if (v?.epoch > (latest?.epoch || base)) {
      latest = v;
      emit("update", v);
      // Then an event named after the policy: "prompt" is the one an app shows a toast for.
      emit(v.policy, v);
      // Else it waits for the next route change, or (watchIdle) until hidden or idle.
      if (v.policy == "immediate" && (o.immediate || w.document.hidden)) reload("immediate");
    }
  };

  const observe = (headers, status, request) => {
    // A Headers, an object with get(), or a plain object with lowercase keys (index.d.ts).
    const get = (name) => (headers.get ? headers.get(name) : headers[name.toLowerCase()]);
    learn(get(o.header || "X-SPA-Version"), 1);
    // A 409 carrying the reload instruction: reload now, to the location given; only the
    // loop guard may stop it (docs/protocol.md, "Stale clients").
    const to = status == 409 && get("X-SPA-Reload");
    if (to) reload("stale-client", to == "*" ? "" : to, request);
  };

  // The request headers carrying our epoch (and slot), if a request to `url` should have
  // them. Same origin only by default: a custom header makes a cross-origin request
  // preflighted. None at the unreleased baseline, 0: the server reads only epochs from 1
  // (docs/protocol.md, "Request header").
  const headersFor = (url) => {
    const send = o.sendClientVersion;
    const u = new URL(url, l.href);
    return base && (send?.call ? send(u) : send ?? u.origin == l.origin)
      ? { [o.clientHeader || "X-SPA-Client-Version"]: "" + base, ...(pin && { "X-SPA-Pin": pin }) }
      : {};
  };

  // `request`: for a 409, the refused request ({ method, url, body }), if known.
  function reload(reason, url, request) {
    if (leaving) return true;
    const info = { epoch: latest?.epoch || base, reason, url: new URL(url || "", l.href).href, request };
    // A 409 is not asked: the server has refused this code already.
    if (reason != "stale-client" && o.beforeReload?.(info) === false) return emit("veto", info), false;
    // stillOld: this tab reloaded for this epoch already and came back with older code (a
    // cache or a service worker served the old shell); else the reload cap tripped.
    const stillOld = mayReload(w, o, info.epoch);
    if (stillOld != null) return emit("blocked", { ...info, stillOld }), false;
    emit("reload", info);
    leaving = 1;
    // At a route change the router has made the target the current entry already (or Back
    // made it current): it is reloaded where it is, so history stays as the router made it
    // (pushing it again would add a second entry and drop the forward history). Another
    // URL is assigned: one new entry, and no pushState for a router that watches it
    // (TanStack Router's history does) to start the target's loaders with the old code.
    // assign() to a URL that differs in its #hash alone only moves to the anchor (hash
    // routers need a load there): then the page is reloaded at it.
    const doc = (u) => u.split("#")[0];
    if (info.url != l.href) l.assign(info.url);
    if (doc(info.url) == doc(l.href)) l.reload();
    return true;
  }

  // One decision per target URL: popstate and hashchange both fire for one "back" across
  // hash entries, and a router may call navigate() and then pushState.
  const routeTo = (url) => {
    const href = new URL(url, l.href).href;
    if (href == routed) return;
    routed = href;
    // next-navigation and immediate (and any policy a newer server invents) reload at a
    // route change; prompt and silent leave that to the app.
    return latest && !/^(prompt|silent)$/.test(latest.policy) && reload("navigation", url);
  };

  wrapFetch(w, headersFor, observe);
  wrapHistory(w, () => routeTo(l.href));

  return (w[KEY] = {
    options: o,
    get baseline() {
      return base;
    },
    get latest() {
      return latest;
    },
    get slot() {
      return pin || null;
    },
    on(type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
      // A new array, not splice(): an emit() in progress keeps iterating the old one.
      return () => (listeners[type] = listeners[type].filter((f) => f != fn));
    },
    observe,
    headersFor,
    offer: learn, // (its second argument, "from a response", stays unset)
    navigate: (url) => !!routeTo(url),
    // `reason`: the helpers' own (watchIdle's "idle"); an app leaves it out.
    reload: (url, reason) => reload(reason || "manual", url),
  });
}

// -- opt-in helpers ----------------------------------------------------------------------------

const win = (sv) => sv.options.window || globalThis;
// Each helper attaches once per instance, however often it is called (startAll() twice).
const once = (sv, name, attach) => (sv[name] || attach((sv[name] = win(sv))), sv);

/**
 * Ask the server now: fetch the version endpoint (`options.endpoint`, default
 * `/__spa-version`, or next to the script-tag build's own URL) through the wrapped fetch,
 * which observes its header like any other response. Resolves to whether a newer version
 * is known; never rejects.
 */
export function check(sv = start()) {
  const stale = () => !!sv.latest;
  return win(sv).fetch(sv.options.endpoint || defaults.endpoint, { cache: "no-store" }).then(stale, stale);
}

/**
 * Policy `immediate`, the waiting: reload when the tab is hidden (it loses nothing visible)
 * or once the user has been idle for `options.idle` ms (default 60 000), so a reload never
 * lands in the middle of typing or clicking. Every input (pointer, key, scroll) restarts
 * the wait. Without it, such a tab waits for its next route change (start() alone reloads
 * at once only a tab hidden when the news comes, or with `immediate: true`).
 */
export function watchIdle(sv = start()) {
  return once(sv, "_idle", (w) => {
    let timer;
    const restart = () => {
      w.clearTimeout(timer);
      // timer = 0 once it fired: after a veto, wait for the next route change (or hidden
      // tab) instead of asking again after every pause.
      timer = w.setTimeout(() => (timer = 0) || immediate("idle"), sv.options.idle ?? 6e4);
    };
    const immediate = (reason) => sv.latest?.policy == "immediate" && sv.reload(undefined, reason);
    sv.on("immediate", restart);
    // A hidden tab loses nothing visible by reloading.
    w.document.addEventListener("visibilitychange", () => w.document.hidden && immediate("hidden"));
    // pointerdown covers touch; scroll is captured (it doesn't bubble) and covers reading.
    for (const type of ["pointerdown", "keydown", "scroll"]) w.addEventListener(type, () => timer && restart(), true);
  });
}

/**
 * Also observe `XMLHttpRequest` (axios' default adapter, older libraries): the same
 * request header is sent and the same response header read as for fetch.
 */
export function watchXHR(sv = start()) {
  return once(sv, "_xhr", (w) => {
    const X = w.XMLHttpRequest.prototype;
    const { open, send } = X;
    // open() knows the URL, and the request headers may be set from then until send().
    X.open = function (method, url) {
      open.apply(this, arguments);
      try {
        const add = sv.headersFor(url);
        for (const name in add) this.setRequestHeader(name, add[name]);
      } catch {}
      // getAllResponseHeaders(), not getResponseHeader(): Chromium logs an error for each
      // header a CORS response does not expose; this lists only the readable ones.
      this.addEventListener("loadend", () => {
        const all = this.getAllResponseHeaders();
        const get = (name) => all.match(RegExp(`^${name}: *(.*)`, "im"))?.[1]; // ".": not \r, \n
        // The request, for a 409's reload event: the body is what send() was given.
        sv.observe({ get }, this.status, { method, url: this.responseURL, body: this[KEY] });
      });
    };
    X.send = function (body) {
      this[KEY] = body;
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
    // Sent as a header value ("2;epoch=2;policy=prompt;label=b", the unknown key ignored),
    // so the other tab, whatever its release, runs it through the same parser as a
    // response; news that came from the channel is not echoed back into it.
    sv.on("update", (v) => {
      let value = v.epoch;
      for (const key in v) if (v[key] != null) value += `;${key}=${v[key]}`;
      incoming || bc.postMessage(value);
    });
  });
}

/**
 * When a hidden tab becomes visible, fetch the version endpoint, at most once per
 * `options.focusCheck` ms (default 60 000); `focusCheck: false` turns it off.
 */
export function watchFocus(sv = start()) {
  return once(sv, "_focus", (w) => {
    let last = Date.now();
    w.document.addEventListener("visibilitychange", () => {
      const every = sv.options.focusCheck;
      if (!w.document.hidden && every !== false && Date.now() - last >= (every ?? 6e4)) {
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
      (e) => /dynamically|module script|chunk/i.test(e.reason?.message) && recover(),
    );
    w.addEventListener("vite:preloadError", recover);
  });
}

/**
 * Watch a WebSocket for the drain close (docs/protocol.md, "Websocket drain"): code 1012
 * (Service Restart), or 4012 where the server refuses 1012, whose reason is a header value
 * announcing the new release. A drain close with an empty or unparsable reason (a server
 * that dropped it), or one naming no release (epoch 0), makes the helper ask the version
 * endpoint instead. Other closes say nothing about versions. Returns `ws`.
 */
export function watchSocket(ws, sv = start()) {
  ws.addEventListener("close", (e) => (e.code == 1012 || e.code == 4012) && (parseVersion(e.reason)?.epoch ? sv.offer(e.reason) : check(sv)));
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

/**
 * Wire an axios instance (the global `axios` or any `axios.create()` one; interceptors are
 * per instance, so each needs this call): its requests carry the tab's epoch (and slot),
 * its responses and errors are observed, so a 409 reloads the page (the refused request,
 * `{ method, url, data }` as axios sent them, goes to the `reload` event). Returns the
 * instance.
 */
export function watchAxios(ax, sv = start()) {
  // Neither interceptor may throw: that would fail the app's request.
  ax.interceptors.request.use((config) => {
    try {
      // AxiosHeaders (axios 1.x) and plain objects (0.x) both take plain properties.
      Object.assign(config.headers, sv.headersFor(ax.getUri(config)));
    } catch {}
    return config;
  });
  const seen = (res) => {
    try {
      res && sv.observe(res.headers, res.status, { ...res.config, url: new URL(ax.getUri(res.config), win(sv).location.href).href });
    } catch {}
  };
  ax.interceptors.response.use(
    (res) => (seen(res), res),
    (error) => (seen(error?.response), Promise.reject(error)),
  );
  return ax;
}

/**
 * Service-worker shells (docs/js.md, "Service workers (PWA)"). A tab that reloaded for an
 * epoch and came back with older code (its service worker served the cached shell) is
 * still old, not looping: when it learns that epoch again (`update`) or the loop guard
 * refuses a reload as `stillOld`, unregister the worker that controls the page and reload
 * once more through the usual path (`beforeReload`, the `reload` event, the loop guard's
 * count): that load comes from the network, and the new shell registers the new worker.
 * At most once per epoch per tab.
 */
export function watchServiceWorker(sv = start()) {
  return once(sv, "_sw", (w) => {
    const sw = w.navigator.serviceWorker;
    const retry = (epoch, url) => {
      // (sessionStorage throws where it is unavailable: then nothing is done.)
      try {
        const store = w.sessionStorage;
        const log = JSON.parse(store[LOG]);
        // Reloaded for this epoch already, and this page is still older: the worker's cache.
        if (!sw?.controller || !(sv.baseline < epoch) || !log.some((x) => x?.[0] >= epoch) || store[LOG + ":sw"] >= epoch) return;
        store[LOG + ":sw"] = epoch;
        // The guard forgets that epoch (the entry keeps counting towards maxReloads).
        store[LOG] = JSON.stringify(log.map((x) => (x?.[0] >= epoch ? [0, x[1]] : x)));
      } catch {
        return;
      }
      // Unregistered or not, the reload goes ahead: the guard's count still bounds it.
      sw.getRegistration()
        .then((reg) => reg?.unregister())
        .catch(() => {})
        .then(() => sv.reload(url, "service-worker"));
    };
    sv.on("update", (v) => retry(v.epoch));
    sv.on("blocked", (info) => info.stillOld && retry(info.epoch, info.url));
  });
}

/**
 * Everything on: start() plus every watch*() helper that needs no argument (what the
 * script-tag build does), and, when the page carries no baseline, one version check at
 * once, so the baseline is the version of the moment the code loaded rather than of the
 * app's first request (docs/js.md, "The baseline").
 */
export function startAll(options) {
  const sv = watchServiceWorker(watchChunks(watchFocus(watchTabs(watchIdle(watchXHR(start(options)))))));
  sv.baseline ?? check(sv);
  return sv;
}
