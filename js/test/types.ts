// Type test of index.d.ts: `npm run types` (tsc --noEmit --strict) compiles this file,
// which uses every export the way docs/js.md does. Each `@ts-expect-error` line must fail
// to type-check, so a declaration that grew too loose fails the test too.
import axios, { type AxiosInstance } from "axios";
import {
  check,
  parseVersion,
  socketUrl,
  start,
  startAll,
  watchChunks,
  watchEventSource,
  watchFocus,
  watchSocket,
  watchTabs,
  watchXHR,
  watchAxios,
  watchIdle,
  watchServiceWorker,
  type BlockedInfo,
  type Events,
  type Options,
  type ReloadInfo,
  type SpaVersion,
  type Version,
} from "spa-version";

const options: Options = {
  baseline: "42; label=a1b2c3; policy=prompt",
  header: "X-SPA-Version",
  clientHeader: "X-SPA-Client-Version",
  sendClientVersion: (url: URL) => url.origin === "https://api.example.com",
  endpoint: "/shop/__spa-version",
  immediate: false,
  idle: 60_000,
  beforeReload: (info: ReloadInfo) => info.reason !== "navigation",
  maxReloads: 3,
  reloadWindow: 600_000,
  channel: "spa-version",
  focusCheck: false,
  window,
};
const sv: SpaVersion = start(options);
start({ baseline: 41, sendClientVersion: true, channel: false, beforeReload: () => {} });
startAll();
startAll({ focusCheck: 30_000 });

// Instance members.
const baseline: number | null = sv.baseline;
const slot: string | null = sv.slot;
const latest: Version | null = sv.latest;
sv.options.idle = 5_000;
const off: () => void = sv.on("prompt", (v) => {
  const epoch: number = v.epoch;
  const label: string | null = v.label;
  const min: number | null = v.min;
  console.log(epoch, label, min, v.policy === "prompt");
});
off();
sv.on("update", (v: Version) => v.policy);
sv.on("reload", (info) => info.url.length);
sv.on("veto", (info: ReloadInfo) => info.epoch);
sv.on("blocked", (info) => info.reason);
sv.on("blocked", (info: BlockedInfo) => info.stillOld && info.epoch);
// The reload event: the place to stash work; a 409's refused request comes with it.
sv.on("reload", (info) => {
  if (info.request) sessionStorage.setItem("draft", String(info.request.body ?? info.request.data ?? ""));
  const method: string | undefined = info.request?.method;
  const url: string | undefined = info.request?.url;
  console.log(method, url);
});
const events: (keyof Events)[] = ["update", "prompt", "immediate", "next-navigation", "silent", "reload", "veto", "blocked"];
sv.observe(new Headers({ "X-SPA-Version": "43" }), 200);
sv.observe({ get: (name: string) => (name === "X-SPA-Version" ? "43" : null) });
sv.observe({ "x-spa-version": "43" }, 409);
const headers: Record<string, string> = sv.headersFor("/api/items");
sv.headersFor(new URL("https://api.example.com/items"));
sv.offer("43; label=b7c8; policy=next-navigation");
const leaving: boolean = sv.navigate("/next") || sv.reload() || sv.reload("/login");

// Module functions.
const parsed: Version | null = parseVersion("7; label=a, 7; label=a") ?? parseVersion(null) ?? parseVersion(7);
const stale: Promise<boolean> = check(sv);
check().then((isStale: boolean) => isStale && sv.reload());
const same: SpaVersion = watchServiceWorker(watchChunks(watchFocus(watchIdle(watchTabs(watchXHR(sv))))));
watchXHR();
const ws: WebSocket = watchSocket(new WebSocket(socketUrl("/ws")));
const es: EventSource = watchEventSource(new EventSource("/events"), sv);
watchSocket(new WebSocket(socketUrl(new URL("wss://example.com/live"), sv)), sv);
ws.close();

// axios, the real types: the global instance and an `axios.create()` one (what generated
// API clients use), and observe() fed an axios response by hand.
const api: AxiosInstance = watchAxios(axios.create({ baseURL: "/api" }), sv);
watchAxios(axios);
api.get<{ id: number }[]>("/items").then((res) => {
  sv.observe(res.headers, res.status);
  return res.data[0]?.id;
});
api.interceptors.response.use(undefined, (error: unknown) => {
  if (axios.isAxiosError(error) && error.response) sv.observe(error.response.headers, error.response.status, { url: api.getUri(error.config) });
  return Promise.reject(error);
});
sv.reload(undefined, "service-worker");

// The docs' router recipes, typed against stand-ins for the libraries.
declare const router: {
  beforeEach(guard: (to: { fullPath: string }) => boolean): void;
  resolve(to: { fullPath: string }): { href: string };
};
router.beforeEach((to) => !sv.navigate(router.resolve(to).href));

console.log(baseline, latest, events, headers, leaving, parsed, stale, same);

// What the declarations refuse.
// @ts-expect-error: not an event
sv.on("updated", () => {});
// @ts-expect-error: a prompt's detail is a Version, not a ReloadInfo
sv.on("prompt", (info: ReloadInfo) => info.url);
// @ts-expect-error: baseline is read-only
sv.baseline = 3;
// @ts-expect-error: beforeReload gets a ReloadInfo
start({ beforeReload: (info: string) => info === "" });
// @ts-expect-error: channel is a name or false
start({ channel: true });
// @ts-expect-error: parseVersion may return null
parseVersion("1").epoch;
// @ts-expect-error: watchAxios takes an axios instance, not a config
watchAxios({ baseURL: "/api" });
// @ts-expect-error: headersFor takes a URL, not a request init
sv.headersFor({ method: "POST" });
