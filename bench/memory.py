"""Memory: the RSS a uvicorn worker gains from the middleware, at idle and after 10,000 websockets.

Two uvicorn processes (``--ws websockets-sansio``) side by side: ``bare`` (the trivial
app, `bench.apps`) and ``drain``: the same app inside `spa_version.VersionMiddleware`
with everything a worker runs in production on: the listener (Redis pub/sub), the
fleet heartbeat, and the drain (a declared build, so every websocket is tracked for a
drain). Their RSS (``VmRSS`` from /proc) is read after start-up and 200 HTTP requests
(idle), then after N websocket connects and disconnects (real ``websockets`` clients,
a few at a time, the two servers taking turns in batches of 500), and once more after
a 2 s pause.

    .venv/bin/python -m bench.memory [--websockets 10000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import Uvicorn, get, redis_server, save, table
from bench.drain import rss_bytes
from spa_version.stores import open_store

VARIANTS = ("bare", "drain")
BATCH = 500


async def churn(ws_url: str, count: int, concurrency: int) -> int:
    """Open and close *count* websockets, *concurrency* at a time; return how many opened."""
    from websockets.asyncio.client import connect

    opened = 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        nonlocal opened
        async with semaphore, connect(ws_url, ping_interval=None, open_timeout=30, close_timeout=10):
            opened += 1

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), 60 + count / 50)
    return opened


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--websockets", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    rss: dict[str, dict[str, int]] = {v: {} for v in VARIANTS}
    opened = dict.fromkeys(VARIANTS, 0)
    series: dict[str, list[int]] = {v: [] for v in VARIANTS}  # RSS after each batch
    with redis_server() as redis:

        async def seed() -> None:
            store = open_store(redis.url, app="bench")
            try:
                await store.bump("bench-1")
            finally:
                await store.aclose()

        asyncio.run(seed())
        env = {"BENCH_STORE_URL": redis.url, "BENCH_APP": "bench", "BENCH_DRAIN_WINDOW": "10"}
        extra = ["--ws", "websockets-sansio"]
        with Uvicorn("bare", env=env, extra=extra) as bare, Uvicorn("drain", env=env, extra=extra) as drain:
            servers = {"bare": bare, "drain": drain}
            for variant, server in servers.items():
                for _ in range(200):
                    assert get(server.url + "/")[0] == 200
                if variant == "drain":
                    assert "x-spa-version" in get(server.url + "/")[1], "ours must be stamping"
            time.sleep(2)  # the quantity measured: RSS after a fixed settle time at idle
            for variant, server in servers.items():
                rss[variant]["idle"] = rss_bytes(server.pid)
            started = time.monotonic()
            for start in range(0, args.websockets, BATCH):
                for variant, server in servers.items():
                    count = min(BATCH, args.websockets - start)
                    opened[variant] += asyncio.run(churn(server.ws_url, count, args.concurrency))
                    series[variant].append(rss_bytes(server.pid))
                print(f"memory: {start + count:,}/{args.websockets:,} websockets each", flush=True)
            churn_s = time.monotonic() - started
            for variant, server in servers.items():
                rss[variant]["after"] = rss_bytes(server.pid)
            time.sleep(2)  # and again after a pause: is anything still held?
            for variant, server in servers.items():
                rss[variant]["settled"] = rss_bytes(server.pid)
    assert all(n == args.websockets for n in opened.values()), opened
    mib = 1024 * 1024

    def second_half(variant: str) -> int:
        """RSS growth over the second half of the churn: a leak keeps growing, a cache does not."""
        values = series[variant]
        return values[-1] - values[len(values) // 2 - 1] if len(values) >= 2 else 0

    def growth(variant: str) -> int:
        return rss[variant]["settled"] - rss[variant]["idle"]

    rows: list[list[Any]] = [
        [
            variant,
            rss[variant]["idle"] / mib,
            rss[variant]["after"] / mib,
            rss[variant]["settled"] / mib,
            growth(variant) / 1024,
            second_half(variant) / 1024,
        ]
        for variant in VARIANTS
    ]
    rows.append(
        [
            "drain − bare (what the middleware adds)",
            (rss["drain"]["idle"] - rss["bare"]["idle"]) / mib,
            (rss["drain"]["after"] - rss["bare"]["after"]) / mib,
            (rss["drain"]["settled"] - rss["bare"]["settled"]) / mib,
            (growth("drain") - growth("bare")) / 1024,
            (second_half("drain") - second_half("bare")) / 1024,
        ]
    )
    text = table(
        f"Memory: uvicorn worker RSS, idle and after {args.websockets:,} websocket connects and disconnects "
        f"({args.concurrency} at a time, {churn_s:.0f} s for both servers)",
        [
            "process",
            "idle (MiB)",
            "right after (MiB)",
            "2 s later (MiB)",
            "growth, idle to 2 s later (KiB)",
            "growth over the second half of the churn (KiB)",
        ],
        rows,
    )
    data = {"rss_bytes": rss, "rss_after_each_batch": series, "opened": opened, "churn_seconds": churn_s}
    save("memory", {"args": vars(args), **data}, text)
    return {"rss_bytes": rss}


if __name__ == "__main__":
    main()
