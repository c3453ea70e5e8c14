// Types for spa-version, the browser half of the spa-version Python package: the server
// stamps `X-SPA-Version` on every response (docs/protocol.md) and this helper decides when
// an open tab moves to the new deploy. Guide: docs/js.md.

/** One parsed `X-SPA-Version` value: `42; label=a1b2c3; policy=immediate; min=40`. */
export interface Version {
  /** Monotonic deploy counter (1 to 15 digits); the only thing compared. */
  epoch: number;
  /** Opaque build name, for humans. */
  label: string | null;
  /** How open tabs move: `next-navigation` (default), `immediate`, `prompt`, `silent`. */
  policy: "next-navigation" | "immediate" | "prompt" | "silent" | (string & {});
  /** Clients older than this epoch get a 409 on enforced requests. */
  min: number | null;
  /** The blue/green slot of the process that answered (`; slot=blue`), if it declares one. */
  slot?: string;
}

/**
 * The request a server refused with a 409 (`stale-client`): what the app's HTTP client
 * sent, so the `reload` listener can stash the user's work. From `fetch`: the init the app
 * passed (`method`, `body` as given: a JSON string, `FormData`, ...; absent for a GET
 * without one) and `url` (absolute). From `watchXHR`: `method`, `url`, `body` (what was
 * given to `send()`). From `watchAxios`: the axios config (`method`, `data`, ...) with `url`
 * absolute.
 */
export interface RefusedRequest {
  url: string;
  method?: string;
  body?: unknown;
  data?: unknown;
  [key: string]: unknown;
}

/** What a reload is about to do, or was stopped from doing. */
export interface ReloadInfo {
  /** The epoch the reload is for (the newest known). */
  epoch: number;
  /**
   * Why: `navigation`, `immediate`, `idle`, `hidden`, `stale-client` (409), `manual`,
   * `service-worker` (`watchServiceWorker`).
   */
  reason: string;
  /** The absolute URL that will be loaded. */
  url: string;
  /** For a 409 (`stale-client`), the refused request, when the client that got it is known. */
  request?: RefusedRequest;
}

/** A reload the loop guard refused. */
export interface BlockedInfo extends ReloadInfo {
  /**
   * True: this tab reloaded for this epoch already and came back with older code (a cache
   * or a service worker served the old shell: `watchServiceWorker`). False: the cap of
   * `maxReloads` per `reloadWindow` (a loop).
   */
  stillOld: boolean;
}

/**
 * What `watchAxios` needs of an axios instance: the global `axios` and every
 * `axios.create()` instance fit (test/types.ts checks this against axios' own types).
 */
export interface AxiosLike {
  interceptors: {
    request: { use(onFulfilled: (config: any) => any): unknown };
    response: { use(onFulfilled: (response: any) => any, onRejected: (error: any) => any): unknown };
  };
  getUri(config?: any): string;
}

export interface Options {
  /**
   * The version this page's code belongs to: an epoch or a header value. Default: the
   * `<meta name="spa-version" content="...">` tag, else the first response seen (racy:
   * see docs/js.md).
   */
  baseline?: number | string;
  /** Response header to read. Must match the server's `header_name`. Default `X-SPA-Version`. */
  header?: string;
  /** Request header carrying this tab's epoch. Default `X-SPA-Client-Version`. */
  clientHeader?: string;
  /**
   * Which requests carry `clientHeader`: default same-origin only (a custom header makes a
   * cross-origin request preflighted); `true` for all, `false` for none, or a function.
   */
  sendClientVersion?: boolean | ((url: URL) => boolean);
  /**
   * Version endpoint for `check()` (and so for `watchFocus`, `watchChunks`, and a drain
   * close without a readable reason). Default `/__spa-version`; the script-tag build
   * served at `<prefix>/__spa-version.js` defaults to `<prefix>/__spa-version`. An app
   * under a mount prefix passes its own.
   *
   * @example
   * start({ endpoint: "/shop/__spa-version" }) // app mounted at /shop
   */
  endpoint?: string;
  /**
   * Policy `immediate`: reload at once, even in a visible tab. Default false: a visible tab
   * waits for its next route change, or (with `watchIdle`) until hidden or idle.
   */
  immediate?: boolean;
  /** `watchIdle()`, policy `immediate`, visible tab: ms without input (pointer, key, scroll) before reloading. Default 60 000. */
  idle?: number;
  /**
   * Veto: return `false` to keep the page (an upload running). The helper tries again at
   * the next route change. Not asked for a 409 (`stale-client`): the server has refused
   * this code already. To keep a form's draft, stash it at the `reload` event instead,
   * which fires before every reload (docs/js.md, "Keeping the user's work").
   *
   * @example
   * start({ beforeReload: () => !form.dirty })
   */
  beforeReload?: (info: ReloadInfo) => boolean | void;
  /** Loop guard: at most this many reloads per `reloadWindow` in one tab. Default 3. */
  maxReloads?: number;
  /** Loop guard window in ms. Default 600 000 (10 minutes). */
  reloadWindow?: number;
  /** `watchTabs()`: BroadcastChannel name, or `false` for none. Default `spa-version`. */
  channel?: string | false;
  /** `watchFocus()`: at most one check per this many ms, or `false` for none. Default 60 000. */
  focusCheck?: number | false;
  /** The window to watch. Default `globalThis`. */
  window?: Window;
}

export interface Events {
  /** A strictly newer epoch was learned (any policy, `silent` included). */
  update: Version;
  /** The new version's policy is `prompt`: show a toast; call `reload()` on click. */
  prompt: Version;
  /** Also fired, after `update`, under the name of any other policy. */
  immediate: Version;
  "next-navigation": Version;
  silent: Version;
  /**
   * About to reload: fired before every reload, forced ones (a 409) included, so it is the
   * place to stash the user's work (docs/js.md, "Keeping the user's work"). Synchronous:
   * the page unloads right after the listeners return.
   */
  reload: ReloadInfo;
  /** `beforeReload` returned false. */
  veto: ReloadInfo;
  /** The loop guard stopped a reload: already reloaded for this epoch (`stillOld`), or too many reloads. */
  blocked: BlockedInfo;
}

export interface SpaVersion {
  /** The live options object: assign to it (or call `start()` again) to change them. */
  options: Options;
  /** The epoch this page was loaded with (0: before the first release); null until known. */
  readonly baseline: number | null;
  /** The newest strictly newer version learned, or null: non-null means this tab is stale. */
  readonly latest: Version | null;
  /**
   * The slot this page was loaded from (with the baseline, from the same source), sent
   * back as `X-SPA-Pin` with the client epoch; null if unknown or not a valid slot token.
   */
  readonly slot: string | null;
  /**
   * Listen; returns the function that stops listening.
   *
   * @example
   * sv.on("prompt", (v) => showToast(`Version ${v.label} is out`, () => sv.reload()));
   */
  on<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): () => void;
  /**
   * Feed a response from your own HTTP client: a `Headers`, an object with `get(name)`
   * (axios' `AxiosHeaders`), or a plain object with lowercase keys; `status` lets a 409
   * reload the page, and `request` (what was sent) goes to the `reload` event. For axios,
   * `watchAxios(instance)` does this.
   *
   * @example
   * ky.create({ hooks: { afterResponse: [(req, opts, res) => sv.observe(res.headers, res.status, { url: req.url, method: req.method })] } });
   */
  observe(
    headers: Headers | { get(name: string): unknown } | { [name: string]: unknown },
    status?: number,
    request?: RefusedRequest,
  ): void;
  /**
   * The request header(s) to add to a request to `url`: `{ "X-SPA-Client-Version": "41" }`
   * (plus `"X-SPA-Pin": "blue"` when the page's slot is known), or `{}` (no baseline yet, or `url` is not one `sendClientVersion` allows).
   *
   * @example
   * request.headers.set("X-SPA-Client-Version", sv.headersFor(request.url)["X-SPA-Client-Version"] ?? "");
   */
  headersFor(url: string | URL): Record<string, string>;
  /** Learn a version value from elsewhere (a socket, an SSE event); never sets the baseline. */
  offer(value: string): void;
  /**
   * Router hook: call before a route change. Returns true if the helper is loading `url`
   * as a full page (the router should stop), false to go on as usual.
   *
   * @example
   * // Vue Router
   * router.beforeEach((to) => !sv.navigate(router.resolve(to).href));
   */
  navigate(url: string): boolean;
  /**
   * Reload now (to `url` if given); `beforeReload` and the loop guard apply. True if
   * reloading. `reason` (default `manual`) is what the events report; the helpers pass
   * their own (`idle`, `service-worker`).
   */
  reload(url?: string, reason?: string): boolean;
}

/**
 * Start (or get) the instance for this window: wraps `fetch` and `history` once, reads
 * the baseline, and applies each new version's policy.
 *
 * @example
 * import { start } from "spa-version";
 * const sv = start({ beforeReload: () => !document.querySelector("form.dirty") });
 */
export function start(options?: Options): SpaVersion;

/**
 * Everything on: `start()` plus `watchXHR`, `watchIdle`, `watchTabs`, `watchFocus`,
 * `watchChunks` and `watchServiceWorker`; and, when the page carries no baseline (no
 * option, meta tag or `Server-Timing`), one `check()` at once.
 */
export function startAll(options?: Options): SpaVersion;

/**
 * Parse an `X-SPA-Version` value (or meta content, or drain close reason); null if invalid.
 * A comma-joined value (a header repeated by a proxy) yields the element with the highest
 * epoch. Never throws on a string.
 */
export function parseVersion(value: string | number | null | undefined): Version | null;

/** Fetch the version endpoint (`options.endpoint`) now. Resolves to whether a newer version is known; never rejects. */
export function check(sv?: SpaVersion): Promise<boolean>;

/** Observe `XMLHttpRequest` too (axios' default adapter in browsers). */
export function watchXHR(sv?: SpaVersion): SpaVersion;

/**
 * Wire an axios instance: the global `axios` or an `axios.create()` one (interceptors are
 * per instance: call it for each). Its requests carry the tab's epoch (and slot), its
 * responses and errors are observed (a 409 reloads the page). Returns the instance.
 *
 * @example
 * const api = watchAxios(axios.create({ baseURL: "/api" }), sv);
 */
export function watchAxios<T extends AxiosLike>(instance: T, sv?: SpaVersion): T;

/**
 * Policy `immediate`, the waiting: reload when the tab is hidden, or after `options.idle`
 * ms without input. Without it, a visible tab waits for its next route change.
 */
export function watchIdle(sv?: SpaVersion): SpaVersion;

/**
 * Service-worker shells: a tab that reloaded for an epoch and came back with older code
 * (its worker served the cached shell) unregisters the worker and reloads once more, past
 * it. Once per epoch per tab. docs/js.md, "Service workers (PWA)".
 */
export function watchServiceWorker(sv?: SpaVersion): SpaVersion;

/** Share new versions with the other tabs of this origin (BroadcastChannel). */
export function watchTabs(sv?: SpaVersion): SpaVersion;

/** Check the version endpoint when a hidden tab becomes visible (throttled by `focusCheck`). */
export function watchFocus(sv?: SpaVersion): SpaVersion;

/** On a script/link load error or a failed dynamic `import()`: check, and reload if stale. */
export function watchChunks(sv?: SpaVersion): SpaVersion;

/**
 * Mark the tab stale when the server drains this socket: close code 1012 (or 4012, from a
 * server that refuses 1012) with a version as the reason; with an empty or unparsable
 * reason, check the version endpoint instead. Returns `ws`.
 *
 * @example
 * const ws = watchSocket(new WebSocket(socketUrl("/ws")));
 */
export function watchSocket<T extends WebSocket>(ws: T, sv?: SpaVersion): T;

/**
 * Learn the new version from an `EventSource`: the old build's drain ends the stream with
 * a last event of type `spa-version` whose data is the new release's header value
 * (docs/protocol.md, "Stream drain"); the tab then follows its policy, and the
 * `EventSource` reconnects to the live build by itself. Returns `es`.
 *
 * @example
 * const es = watchEventSource(new EventSource("/events"));
 */
export function watchEventSource<T extends EventSource>(es: T, sv?: SpaVersion): T;

/**
 * `url` as an absolute `ws:`/`wss:` URL with `spa-client-version=<baseline>` appended:
 * a browser can't set headers on the handshake.
 *
 * @example
 * new WebSocket(socketUrl("/ws")); // ws://host/ws?spa-client-version=41
 */
export function socketUrl(url: string | URL, sv?: SpaVersion): string;
