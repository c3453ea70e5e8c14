"""The cross-origin SPA page of the browser tests: the page on one origin, its API on another."""

from __future__ import annotations

from typing import Any

# The page: the helper from the API's origin (a classic script needs no CORS), started by
# hand to send the tab's epoch to the API too, and a load counter that survives a reload.
PAGE = """<!doctype html><html><head>
<meta name="spa-version" content="{baseline}">
<script src="{api}/__spa-version.js" data-manual></script>
<script>
sessionStorage.loads = String(+(sessionStorage.loads || 0) + 1);
const api = "{api}";
window.sv = SpaVersion.startAll({{
  sendClientVersion: (url) => url.origin === api,
  endpoint: api + "/__spa-version",
}});
sv.on("reload", (info) => {{ sessionStorage.reason = info.reason; }});
</script></head><body>cross-origin page</body></html>"""
# Page code, evaluated with the API path as argument: a POST with fetch (the helper adds
# the tab's epoch).
FETCH_POST = "(path) => { void fetch(api + path, {method: 'POST'}).catch(() => {}); }"

# The docs' axios recipe adds the header itself, and the helper's XHR wrapper adds it again:
# XMLHttpRequest joins the two into one value ("41, 41").
XHR_POST = """(path) => {
  const url = api + path;
  const xhr = new XMLHttpRequest();
  xhr.open('POST', url);
  for (const [name, value] of Object.entries(sv.headersFor(url))) xhr.setRequestHeader(name, value);
  xhr.send();
}"""


class Recorder:
    """Outermost ASGI layer of the API: records the client header of each request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client_headers: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for key, value in scope["headers"]:
                if key == b"x-spa-client-version":
                    self.client_headers.append(value.decode("latin-1"))
        await self.app(scope, receive, send)
