"""Per-request cost in process: the ASGI app called directly in a loop, bare vs wrapped.

No server, no sockets: each variant handles N requests on one event loop, in
alternating rounds; the figure is the median per-request time and the µs each variant
adds over the bare app. Time is this thread's CPU time (``time.thread_time``): the loop
never waits on I/O, so that is its cost, and other processes on a shared machine cannot
inflate it as they do wall-clock time. The target: ours at most 0.35 µs above ``wrap``,
the minimal stamping middleware, per round, median of rounds. Beside them, ``ours-build``:
ours in a process that declares its build (the deploy switch on), whose request path also
counts the request by client epoch and looks at each response's start for an event
stream (docs/protocol.md, "Stream drain"); its figure above ``ours`` is what a response
that is not a stream pays for that. Then pyinstrument profiles ours, to show where those
µs go.

    .venv/bin/python -m bench.inprocess [--requests 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.apps import VARIANTS, make, make_ours
from bench.common import RESULTS, median, redis_server, save, table

#: The per-request target: ours at most this many µs above ``wrap`` (docs/benchmarks.md).
TARGET_OVER_WRAP_US = 0.35
#: The variants measured here: the ASGI variants, and ours with a declared build.
IN_PROCESS = (*VARIANTS, "ours-build")

SCOPE_TEMPLATE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def run(app: Any, n: int) -> float:
    """Seconds to handle *n* requests; checks the last response was stamped as expected."""
    sent: list[Any] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            sent.append(message)

    start = time.thread_time()
    for _ in range(n):
        # A fresh scope per request, as a server makes one (its cost is in every variant).
        await app(dict(SCOPE_TEMPLATE), _receive, send)
    elapsed = time.thread_time() - start
    assert sent and sent[-1]["status"] == 200
    return elapsed


async def prepare(variant: str, url: str) -> Any:
    # ours-build declares the current build (the store holds bench-1): live, nothing to drain.
    app = make_ours(url, build="bench-1") if variant == "ours-build" else make(variant, url)
    if variant in ("ours", "ours-build"):
        # Lifespan startup: the listener reads the store once; then the request path is pure memory.
        await app.startup()
        assert app.current.snapshot.header is not None, "ours must stamp for the measurement to mean anything"
    return app


async def measure(args: argparse.Namespace, url: str) -> dict[str, list[float]]:
    apps = {v: await prepare(v, url) for v in IN_PROCESS}
    for app in apps.values():
        await run(app, 2000)  # warm-up
    per_request: dict[str, list[float]] = {v: [] for v in IN_PROCESS}
    for round_no in range(args.rounds):
        order = IN_PROCESS[round_no % len(IN_PROCESS) :] + IN_PROCESS[: round_no % len(IN_PROCESS)]
        for variant in order:
            n = args.requests if variant not in ("naive", "basehttp") else args.requests // 10
            per_request[variant].append(await run(apps[variant], n) / n * 1e6)
    await profile(apps["ours"], args.requests)
    await apps["ours"].shutdown()
    await apps["ours-build"].shutdown()
    return per_request


async def profile(app: Any, n: int) -> None:
    """pyinstrument over ours: where the per-request time goes (bench/results/profile-ours.txt)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0001, async_mode="disabled")
    profiler.start()
    await run(app, n)
    profiler.stop()
    RESULTS.mkdir(exist_ok=True)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    (RESULTS / "profile-ours.txt").write_text(text)
    print(text[:4000], flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    from spa_version.stores import open_store

    with redis_server() as redis:

        async def seed() -> None:
            store = open_store(redis.url, app="bench")
            await store.bump("bench-1")
            await store.aclose()

        asyncio.run(seed())
        per_request = asyncio.run(measure(args, redis.url))
    bare = median(per_request["bare"])
    rows = []
    for variant in IN_PROCESS:
        added = [x - b for x, b in zip(per_request[variant], per_request["bare"], strict=True)]
        rows.append(
            [
                variant,
                median(per_request[variant]),
                min(per_request[variant]),
                median(added),
                f"{bare / median(per_request[variant]):.3f}",
            ]
        )
    text = table(
        f"In process: µs per request, {args.rounds} alternating rounds of {args.requests:,} requests"
        " (naive and basehttp: a tenth as many)",
        [
            "variant",
            "µs / request (median)",
            "µs / request (fastest round)",
            "µs added vs bare (median of per-round)",
            "bare / variant",
        ],
        rows,
    )
    over_wrap = median([o - w for o, w in zip(per_request["ours"], per_request["wrap"], strict=True)])
    # The fastest rounds show the code's own cost (timeit's reasoning: slower rounds are
    # slower because of other work on the machine); the target is judged on the median.
    fastest = min(per_request["ours"]) - min(per_request["wrap"])
    verdict = "met" if over_wrap <= TARGET_OVER_WRAP_US else "MISSED"
    line = (
        f"Ours above `wrap`: {over_wrap:.3f} µs per request (median of per-round differences;"
        f" fastest rounds: {fastest:.3f} µs); target at most {TARGET_OVER_WRAP_US} µs: {verdict}.\n"
    )
    build_over_ours = median(
        [b - o for b, o in zip(per_request["ours-build"], per_request["ours"], strict=True)]
    )
    line += (
        f"Ours with a declared build above ours: {build_over_ours:.3f} µs per request (median of"
        " per-round differences): the deploy switch's request counting and the event-stream"
        " check, for a response that is not a stream.\n"
    )
    print(line, flush=True)
    text += "\n" + line
    data = {
        "args": vars(args),
        "per_request_us": per_request,
        "ours_over_wrap_us": over_wrap,
        "ours_over_wrap_fastest_us": fastest,
        "build_over_ours_us": build_over_ours,
        "target_met": verdict == "met",
    }
    save("inprocess", data, text)
    return data


if __name__ == "__main__":
    main()
