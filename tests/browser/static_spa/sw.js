// A cache-first shell, the usual PWA set-up: at install it precaches the shell and the
// build's chunks (precache.json, as Workbox's manifest); then the page (any navigation)
// and the assets come from the cache; the API goes to the network.
const CACHE = "shell";
self.addEventListener("install", (event) => {
  self.skipWaiting();
  event.waitUntil(
    fetch("/precache.json")
      .then((response) => response.json())
      .then((urls) => caches.open(CACHE).then((cache) => cache.addAll(urls))),
  );
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.mode === "navigate") {
    event.respondWith(caches.match("/").then((cached) => cached || fetch(event.request)));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(
      caches.open(CACHE).then(async (cache) => {
        const cached = await cache.match(event.request);
        if (cached) return cached;
        const response = await fetch(event.request);
        if (response.ok) await cache.put(event.request, response.clone());
        return response;
      }),
    );
  }
});
