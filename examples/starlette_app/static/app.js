// The demo SPA: a vanilla history router and no build step. The JS helper is already
// running (the /__spa-version.js script tag starts it); this only configures it and
// shows what it does.
"use strict";

const $ = (id) => document.getElementById(id);
let savedNotes = "";
const notesDirty = () => $("notes").value !== savedNotes;

// start() returns the running instance and merges these options into it.
const sv = SpaVersion.start({
  // The veto: unsaved notes keep the page. The helper asks again at the next route change.
  beforeReload: () => !notesDirty(),
});

// -- the router ------------------------------------------------------------------------

const routes = {
  "/": ["Home", "<p>A tiny single-page app. Navigate with the links above: no page loads, just <code>history.pushState</code>.</p>"],
  "/reports": ["Reports", "<p>Quarterly numbers would go here. Every route change also calls the API.</p>"],
  "/about": ["About", "<p>After <code>spa-version bump</code>, your next click here loads the new version, on the page you clicked to.</p>"],
};

function render() {
  const [title, html] = routes[location.pathname] || ["Not found", "<p>No such page.</p>"];
  document.title = `${title} · spa-version demo`;
  $("view").innerHTML = `<h1>${title}</h1>${html}`;
  for (const link of document.querySelectorAll("a[data-route]")) {
    if (new URL(link.href).pathname === location.pathname) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  callApi();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  // The helper watches pushState: with a new version pending, this loads link.href in full.
  history.pushState({}, "", link.href);
  render();
});
window.addEventListener("popstate", render);

// -- AJAX ------------------------------------------------------------------------------

async function callApi() {
  try {
    const response = await fetch("/api/time");
    const body = await response.json();
    $("api-version").textContent = response.headers.get("X-SPA-Version") || "no header";
    $("server-time").textContent = new Date(body.time * 1000).toLocaleTimeString();
  } catch (error) {
    $("api-version").textContent = `error: ${error.message}`;
  }
}
$("refresh").addEventListener("click", callApi);

$("save").addEventListener("click", async () => {
  const text = $("notes").value;
  // A POST: after `bump --min-compatible current` the middleware answers 409 with
  // X-SPA-Reload, and the helper reloads at once (veto or not: the server refused this code).
  const response = await fetch("/api/notes", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  });
  if (response.ok) savedNotes = text;
  $("save-state").textContent = response.ok ? "saved" : `not saved (${response.status})`;
});

// -- what the helper does ------------------------------------------------------------------

function log(type, detail) {
  const item = document.createElement("li");
  item.dataset.type = type;
  item.dataset.epoch = detail.epoch;
  item.textContent = `${new Date().toLocaleTimeString()} ${type}: epoch ${detail.epoch}` +
    (detail.label ? ` (${detail.label}, ${detail.policy})` : "") + (detail.reason ? `, ${detail.reason}` : "");
  $("log").prepend(item);
}
for (const type of ["update", "prompt", "reload", "veto", "blocked"]) sv.on(type, (detail) => log(type, detail));

function showStatus() {
  $("baseline").textContent = sv.baseline ?? "none yet";
  const v = sv.latest;
  if (!v) return;
  $("status").dataset.stale = "";
  const when = {
    "next-navigation": "It loads at your next click.",
    immediate: "It loads when you pause or switch tabs.",
    prompt: "Reload when it suits you.",
    silent: "(silent: nothing happens)",
  }[v.policy] || "It loads at your next click.";
  $("news").textContent = `Version ${v.epoch} (${v.label}) is live. ${when}`;
}
sv.on("update", showStatus);
showStatus();

sv.on("prompt", (v) => {
  $("toast-version").textContent = `${v.epoch} (${v.label})`;
  $("toast").hidden = false;
});
$("toast-reload").addEventListener("click", () => sv.reload());
$("toast-later").addEventListener("click", () => ($("toast").hidden = true));

// -- a websocket --------------------------------------------------------------------------

// Reconnect per RFC 6455 §7.2.3 and docs/js.md: the first delay random in 0-5 s (a drain
// closes many sockets at once; spread them out), then exponential backoff, capped.
let attempt = 0;
function connect() {
  const ws = SpaVersion.watchSocket(new WebSocket(SpaVersion.socketUrl("/ws")));
  ws.onmessage = (event) => {
    attempt = 0;
    const hello = JSON.parse(event.data);
    $("ws-state").textContent = `open (the server saw client epoch ${hello.client_epoch})`;
  };
  ws.onclose = (event) => {
    if (event.code === 1000) return;
    const delay = attempt === 0 ? Math.random() * 5000 : Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt++;
    $("ws-state").textContent = `closed (${event.code}); reconnecting in ${(delay / 1000).toFixed(1)} s`;
    setTimeout(connect, delay);
  };
}

render();
connect();
