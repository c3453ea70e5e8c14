"""What one open tab with the JS helper costs, in real Chromium (Python Playwright).

The page is served by uvicorn through `spa_version.VersionMiddleware` (file store, one
release) in three builds of the same page:

- ``script``: ``<script src="/__spa-version.js">``, the script-tag build the middleware
  serves (``startAll()``: fetch and XHR wrapped, tabs, focus and chunk checks on);
- ``npm``: ``import { start } from "spa-version"; start()`` bundled with esbuild from
  js/ (the package as npm installs it, resolved through its ``exports``), minified;
- ``none``: the same page without the helper (the baseline for the heap).

Measured, each build in its own browser context (its own renderer process), all three
side by side in the same minute:

1. requests the tab makes on its own while visible and untouched for ``--quiet``
   seconds (60 in a full run);
2. requests on a hide/show cycle, twice in a row. Headless Chromium never changes
   ``document.visibilityState`` (tried: a new tab brought to the front over it,
   ``Target.createTarget``/``activateTarget`` in the same window, minimizing the window
   with ``Browser.setWindowBounds``, ``Page.setWebLifecycleState`` frozen/active: all
   leave it ``visible``), so the benchmark overrides ``document.hidden`` and
   ``visibilityState`` on the page's document and dispatches ``visibilitychange``: the
   event the helper listens to. The page's clock (Playwright ``clock.install``, once the
   page has loaded: installed earlier it hides the navigation entry the helper takes its
   baseline from) is moved 61 s ahead first, so the focus check's once-a-minute limit
   has passed in every mode;
3. the JS heap (CDP ``HeapProfiler.collectGarbage``, then ``Performance.getMetrics``
   ``JSHeapUsedSize``), each build minus ``none``;
4. the time the ``fetch`` wrapper adds per call, on one page: the original ``fetch`` is
   kept before the helper loads, then rounds alternate between it and the wrapped one.
   Twice: over the network to the same server (a real ``GET /api``), and over an
   instant in-page ``fetch`` (a stub resolving at once to a stamped ``Response``), which
   isolates the wrapper's own work. These run in other browser contexts during the quiet
   window (the quiet tabs count only their own requests).

    .venv/bin/python -m bench.tab [--quiet 60] [--calls 100] [--rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Uvicorn, median, save, table

JS = ROOT / "js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILDS = ("script", "npm", "none")
POLL_SECONDS = 60
TABS = 100_000

# -- the served app ---------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tab</title>{script}</head>
<body><h1>A quiet SPA page</h1><div id="app"></div>
<script>document.getElementById("app").textContent = "app";</script></body></html>
"""
SCRIPTS = {
    "script": '<script src="/__spa-version.js"></script>',
    "npm": '<script src="/npm-bundle.js"></script>',
    "none": "",
}


async def _page_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path.startswith("/page/") and path[6:] in SCRIPTS:
        body = PAGE.format(script=SCRIPTS[path[6:]]).encode()
        kind = b"text/html; charset=utf-8"
    elif path == "/npm-bundle.js":
        body = Path(os.environ["BENCH_NPM_BUNDLE"]).read_bytes()
        kind = b"text/javascript; charset=utf-8"
    elif path == "/api":
        body, kind = b'{"ok":true}', b"application/json"
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", kind), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _make_app() -> Any:
    from spa_version import VersionMiddleware

    return VersionMiddleware(_page_app, store=os.environ["BENCH_STORE_URL"], app_name="bench")


def __getattr__(name: str) -> Any:
    if name == "app":  # ``uvicorn bench.tab:app``, built only in the server process
        return _make_app()
    raise AttributeError(name)


# -- the npm build ------------------------------------------------------------------------------

BUNDLE_SCRIPT = """
import { createRequire } from "node:module";
const require = createRequire(process.env.JS_DIR + "/package.json");
const { build } = require("esbuild");
await build({
  stdin: { contents: 'import { start } from "spa-version"; start();', resolveDir: process.env.APP_DIR },
  bundle: true, minify: true, format: "iife", target: "es2020", legalComments: "none",
  outfile: process.env.OUT, logLevel: "warning",
});
"""


def npm_bundle(directory: Path) -> Path:
    """Bundle the npm package as an app would: node_modules/spa-version -> js/, then esbuild."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed (make js-test installs the JS toolchain)")
    if not (JS / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=600)
    subprocess.run([npm, "run", "--silent", "build"], cwd=JS, check=True, timeout=300)
    app = directory / "app"
    (app / "node_modules").mkdir(parents=True)
    (app / "node_modules" / "spa-version").symlink_to(JS)
    script = directory / "bundle.mjs"
    script.write_text(BUNDLE_SCRIPT)
    out = directory / "npm-bundle.js"
    env = {**os.environ, "JS_DIR": str(JS), "APP_DIR": str(app), "OUT": str(out)}
    subprocess.run(["node", str(script)], env=env, check=True, timeout=120)
    return out


# -- in the browser -----------------------------------------------------------------------------

HIDE_SHOW = """async (hidden) => {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (hidden ? "hidden" : "visible"),
  });
  document.dispatchEvent(new Event("visibilitychange"));
}"""

# Alternate rounds of `calls` sequential fetches through the original and the wrapped
# fetch; per round, the difference of the two means (µs per call).
FETCH_TIMING = """async ([raw, calls, rounds]) => {
  const wrapped = window.fetch;
  const time = async (f) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) { const r = await f("/api"); await r.arrayBuffer(); }
    return (performance.now() - t0) * 1000 / calls;
  };
  const out = { raw: [], wrapped: [] };
  await time(raw); await time(wrapped);  // warm-up
  for (let i = 0; i < rounds; i++) {
    if (i % 2) { out.wrapped.push(await time(wrapped)); out.raw.push(await time(raw)); }
    else { out.raw.push(await time(raw)); out.wrapped.push(await time(wrapped)); }
  }
  return out;
}"""


async def load_helper(page: Any, build: str) -> None:
    src = "/__spa-version.js" if build == "script" else "/npm-bundle.js"
    await page.add_script_tag(url=src)
    await page.wait_for_function("() => !!window[Symbol.for('spa-version')]", timeout=10_000)


async def fetch_cost(
    browser: Any, base: str, build: str, args: argparse.Namespace, header: str
) -> dict[str, Any]:
    """µs the wrapper adds per fetch: over the network, and over an instant stub."""
    result: dict[str, Any] = {}
    for mode in ("network", "instant"):
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(base + "/page/none")
            if mode == "instant":
                await page.evaluate(
                    """(value) => { window.fetch = (input, init) =>
                         Promise.resolve(new Response("ok", { headers: { "X-SPA-Version": value } })); }""",
                    header,
                )
            await page.evaluate("() => { window.__raw = window.fetch; }")
            await load_helper(page, build)
            # The first response sets the baseline, after which every same-origin call
            # also gets the client-epoch request header: the wrapper's full work.
            await page.evaluate("() => window.fetch('/api')")
            baseline = await page.evaluate("() => window[Symbol.for('spa-version')].baseline")
            assert baseline is not None, (build, mode, "the helper saw no version header")
            calls = args.calls * (20 if mode == "instant" else 1)
            timings = await page.evaluate(
                "([calls, rounds]) => (" + FETCH_TIMING + ")([window.__raw, calls, rounds])",
                [calls, args.rounds],
            )
            diffs = [w - r for w, r in zip(timings["wrapped"], timings["raw"], strict=True)]
            result[mode] = {
                "calls_per_round": calls,
                "raw_us": timings["raw"],
                "wrapped_us": timings["wrapped"],
                "added_us_median": median(diffs),
                "raw_us_median": median(timings["raw"]),
            }
        finally:
            await context.close()
    return result


async def one_tab(browser: Any, base: str, build: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load the page, sit quiet, hide/show twice, then measure the heap."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        requests: list[tuple[float, str]] = []
        page.on("request", lambda request: requests.append((time.monotonic(), request.url)))
        await page.goto(base + f"/page/{build}", wait_until="load")
        await page.wait_for_load_state("networkidle")
        # The fake clock only once the page has started: installed before, it replaces
        # `performance`, and the helper would find no navigation entry to take its baseline
        # from (docs/js.md, "The baseline"), which a real tab has.
        await page.clock.install()
        # The same Playwright calls on every build (Playwright's own scripts share the
        # page's heap), so the heaps differ only by the helper.
        started = await page.evaluate("() => !!window[Symbol.for('spa-version')]")
        assert started == (build != "none"), (build, started)
        on_load = len(requests)
        quiet_from = time.monotonic()
        await asyncio.sleep(args.quiet)  # the quantity measured: a quiet window of fixed length
        quiet = [url for t, url in requests if t >= quiet_from]
        await page.clock.fast_forward(61_000)  # past the focus check's once-a-minute limit
        cycles = []
        for _ in range(2):
            before = len(requests)
            await page.evaluate(HIDE_SHOW, True)
            await page.evaluate(HIDE_SHOW, False)
            await page.wait_for_load_state("networkidle")
            await asyncio.sleep(0.5)  # let a request the show triggered start, if any
            cycles.append([url.removeprefix(base) for _, url in requests[before:]])
        cdp = await context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        heaps = []
        for _ in range(3):
            await cdp.send("HeapProfiler.collectGarbage")
            metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
            heaps.append(metrics["JSHeapUsedSize"])
        visible = await page.evaluate("() => document.visibilityState")
        return {
            "requests_on_load": [url.removeprefix(base) for _, url in requests[:on_load]],
            "quiet_seconds": args.quiet,
            "requests_while_quiet": [url.removeprefix(base) for url in quiet],
            "requests_per_hide_show_cycle": cycles,
            "js_heap_used_bytes": min(heaps),
            "visibility_at_end": visible,
        }
    finally:
        await context.close()


async def run(args: argparse.Namespace, base: str, header: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            version = browser.version
            # The fetch timings run in other contexts during the quiet window: they make
            # requests of their own, but the quiet tabs count only their own.
            tabs_running = asyncio.gather(*(one_tab(browser, base, b, args) for b in BUILDS))
            costs = {b: await fetch_cost(browser, base, b, args, header) for b in ("script", "npm")}
            tabs = await tabs_running
        finally:
            await browser.close()
    return {"chromium": version, "tabs": dict(zip(BUILDS, tabs, strict=True)), "fetch": costs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", type=float, default=60.0, help="seconds the visible tab is left alone")
    parser.add_argument("--calls", type=int, default=100, help="network fetches per round (instant: 20x)")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(argv)
    from spa_version.protocol import format_header
    from spa_version.stores import open_store

    with tempfile.TemporaryDirectory(prefix="spa-bench-tab-") as directory:
        bundle = npm_bundle(Path(directory))
        store_url = f"file://{directory}/store"

        async def seed() -> str:
            store = open_store(store_url, app="bench")
            try:
                return format_header((await store.bump("bench-1")).release)
            finally:
                await store.aclose()

        header = asyncio.run(seed())
        env = {"BENCH_STORE_URL": store_url, "BENCH_NPM_BUNDLE": str(bundle)}
        with Uvicorn("tab", env=env, target="bench.tab:app", ready_path="/api") as server:
            data = asyncio.run(run(args, server.url, header))
        data["npm_bundle_bytes"] = bundle.stat().st_size
    text = report(args, data)
    save("tab", {"args": vars(args), **data}, text)
    return data


def report(args: argparse.Namespace, data: dict[str, Any]) -> str:
    tabs = data["tabs"]
    base_heap = tabs["none"]["js_heap_used_bytes"]
    rows = []
    for build in BUILDS:
        tab = tabs[build]
        cycles = tab["requests_per_hide_show_cycle"]
        rows.append(
            [
                build,
                len(tab["requests_on_load"]),
                f"{len(tab['requests_while_quiet'])} {tab['requests_while_quiet'] or ''}".strip(),
                " / ".join(f"{len(c)} {c or ''}".strip() for c in cycles),
                f"{tab['js_heap_used_bytes']:,.0f}",
                f"{tab['js_heap_used_bytes'] - base_heap:+,.0f}" if build != "none" else "-",
            ]
        )
    text = table(
        f"A tab in Chromium {data['chromium']}: requests it makes by itself, and its JS heap",
        [
            "build",
            "requests to load the page",
            f"requests while visible and quiet for {args.quiet:g} s",
            "requests on a hide/show cycle (1st / 2nd right after)",
            "JS heap used (B)",
            "vs no helper (B)",
        ],
        rows,
    )
    rows = []
    for build, modes in data["fetch"].items():
        for mode, r in modes.items():
            diffs = [w - x for w, x in zip(r["wrapped_us"], r["raw_us"], strict=True)]
            rows.append(
                [
                    build,
                    mode,
                    r["calls_per_round"],
                    r["raw_us_median"],
                    r["added_us_median"],
                    "{:+.1f} to {:+.1f}".format(*quartiles(diffs)),
                ]
            )
    text += "\n" + table(
        f"The fetch wrapper: µs per call, {args.rounds} alternating rounds (median of per-round differences)",
        [
            "build",
            "fetch underneath",
            "calls per round",
            "µs per call without the wrapper",
            "µs added by the wrapper",
            "µs added (middle half of rounds)",
        ],
        rows,
    )
    quiet_rate = {
        b: len(tabs[b]["requests_while_quiet"]) / tabs[b]["quiet_seconds"] for b in ("script", "npm")
    }
    text += (
        f"\n{TABS:,} open tabs polling a version file every {POLL_SECONDS} s: "
        f"{TABS / POLL_SECONDS:,.0f} requests/s. The same tabs with the helper, visible and quiet: "
        + ", ".join(f"{b} {TABS * r:,.0f} requests/s" for b, r in quiet_rate.items())
        + ".\n"
    )
    return text


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


if __name__ == "__main__":
    main()
