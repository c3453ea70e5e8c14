// The test SPA's entry: spa-version wired as docs/js.md says for a bundled app with a
// static index.html, an axios.create() API client, and a small history router whose
// pages are separate chunks.
import axios from "axios";
import { check, start, watchAxios, watchChunks, watchServiceWorker } from "spa-version";

const sv = start();
// No baseline from the page (no meta tag, no Server-Timing): ask once, at start.
if (sv.baseline == null) check(sv);
watchChunks(sv);
watchServiceWorker(sv);
const api = watchAxios(axios.create({ baseURL: "/api" }), sv);

// Keeping the user's work (docs/js.md): the reload event fires before every reload,
// forced ones (a 409) included; stash each draft form, with the request the server refused.
sv.on("reload", (info) => {
  for (const form of document.querySelectorAll("form[data-draft]"))
    sessionStorage.setItem(
      "draft:" + form.dataset.draft,
      JSON.stringify({ fields: Object.fromEntries(new FormData(form)), refused: info.request ? info.request.method + " " + info.request.url : null }),
    );
});

const pages = {
  "/": () => import("./login.js"),
  "/items": () => import("./items.js"),
  "/edit": () => import("./edit.js"),
  "/about": () => import("./about.js"),
};

async function render() {
  const page = await (pages[location.pathname] || pages["/"])();
  page.render(document.getElementById("app"), { api, sv });
  document.body.dataset.page = location.pathname;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link) return;
  event.preventDefault();
  history.pushState(null, "", link.href);
  render();
});
addEventListener("popstate", render);
window.app = { sv, release: RELEASE, api, loads: performance.getEntriesByType("navigation").length };
render();
