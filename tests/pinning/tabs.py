"""Real Chromium tabs of a shell served from one shared web directory, and what they logged.

The seed's way of deploying a frontend: every app process serves the same web directory
(tests/support/haproxy_app.py, ``/shell``), and a deploy replaces its ``index.html`` with the
new build's before the bump (docs/deploy-haproxy.md, "Publishing the assets"). The shell
is static: the JS helper takes its baseline (and slot) from the Server-Timing metric the
middleware adds to the page's own response (docs/js.md, "The baseline").

Each shell's code knows its build (``CODE``) and calls ``/api/whoami`` in a loop, as an
app's API calls; the app answers with the build that served the call. Every page load and
every call is logged in the tab's ``sessionStorage``, which survives reloads, so the test
reads one log per tab, whichever shell the tab runs now.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.support.browser import eventually

SHELL = """<!doctype html>
<html><head><meta charset="utf-8"><title>build @CODE@</title>
<script src="/__spa-version.js"></script></head>
<body><h1 id="code">@CODE@</h1>
<script>
(() => {
  // The code of build @CODE@: it knows which build it is, and logs what it does.
  const CODE = "@CODE@";
  const KEY = "e2e-tab";
  const read = () =>
    JSON.parse(sessionStorage.getItem(KEY) || "null") ||
    { loads: [], calls: [], sent: 0, failures: [], aborted: 0, stopped: false };
  const update = (change) => {
    const log = read();
    change(log);
    sessionStorage.setItem(KEY, JSON.stringify(log));
  };
  const sv = SpaVersion.start();
  update((log) => log.loads.push({ code: CODE, slot: sv.slot, baseline: sv.baseline, at: Date.now() }));
  // Leaving: a reload the test asked for (pagehide), or the helper's after a 409 (its
  // reload event comes first). This code sends nothing more then.
  let leaving = false;
  addEventListener("pagehide", () => { leaving = true; });
  sv.on("reload", () => { leaving = true; });
  window.e2e = { code: CODE, idle: false, stop: () => update((log) => { log.stopped = true; }) };
  (async () => {
    while (!leaving && !read().stopped) {
      const sent = Date.now();
      const pin = sv.slot;  // what the helper sends as X-SPA-Pin
      update((log) => { log.sent += 1; });
      try {
        const response = await fetch("/api/whoami");
        const body = response.status === 200 ? await response.json() : null;
        update((log) => log.calls.push({
          code: CODE, sent, pin, status: response.status,
          reload: response.headers.get("x-spa-reload"),
          build: body && body.build, server: body && body.server,
        }));
      } catch (error) {
        // A call cut short by this tab's own reload is not an answer of the server's.
        update((log) => (leaving ? (log.aborted += 1) : log.failures.push(CODE + ": " + error)));
      }
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    window.e2e.idle = true;
  })();
})();
</script></body></html>
"""


def write_shell(web_dir: Path, code: str) -> None:
    """Replace *web_dir*'s ``index.html`` with build *code*'s shell, atomically (a temporary
    file renamed over it, as ``spa-version assets publish`` does): a reader sees one or the other."""
    fd, tmp = tempfile.mkstemp(dir=web_dir, prefix=".tmp-")
    with os.fdopen(fd, "w") as out:
        out.write(SHELL.replace("@CODE@", code))
    os.replace(tmp, web_dir / "index.html")


@pytest.fixture
def web_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared web directory, with build A's shell; the app servers read ``E2E_WEB_DIR``
    (request this fixture before ``fleet``)."""
    web = tmp_path / "web"
    web.mkdir()
    write_shell(web, "A")
    monkeypatch.setenv("E2E_WEB_DIR", str(web))
    return web


@dataclass
class Call:
    code: str  # the build of the code that made the call
    sent: float  # Unix time, ms
    pin: str | None
    status: int
    reload: str | None  # X-SPA-Reload
    build: str | None  # the build that answered (a 200)
    server: str | None


@dataclass
class TabLog:
    loads: list[dict[str, Any]]  # each page load: code, slot, baseline, at (ms)
    calls: list[Call]
    sent: int
    failures: list[str]
    aborted: int


async def tab_log(page: Page) -> TabLog:
    """What the tab logged so far (waiting out a page load in progress)."""
    raw = await eventually(page, "JSON.parse(sessionStorage.getItem('e2e-tab'))")
    calls = [Call(**call) for call in raw["calls"]]
    return TabLog(raw["loads"], calls, raw["sent"], raw["failures"], raw["aborted"])


async def stop_tab(page: Page) -> TabLog:
    """Stop the tab's calls, wait until the last one has been answered, and return its log."""
    await eventually(page, "window.e2e && (window.e2e.stop(), true)")
    await eventually(page, "window.e2e.idle")
    return await tab_log(page)


NewPage = Callable[[], Coroutine[Any, Any, Page]]


@pytest.fixture
async def pages(browser: Browser) -> AsyncIterator[NewPage]:
    """Make tabs, each in a fresh context (its own sessionStorage, cache and cookies)."""
    contexts = []

    async def new_page() -> Page:
        context = await browser.new_context()
        contexts.append(context)
        return await context.new_page()

    try:
        yield new_page
    finally:
        for context in contexts:
            await context.close()
