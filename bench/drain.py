"""Drain: 5,000 idle websockets on one uvicorn process, closed with 1012 over a window W.

The server (``bench.apps`` variant ``drain``) declares build ``bench-1``, which is live.
The benchmark opens N idle websockets (real ``websockets`` clients), then bumps to
``bench-2``: the process is stale, and the drain closes every socket with 1012 spread
over W seconds. Reported: closes per second (1 s bins over the window; target
max/mean <= 1.3), the server's CPU time during the drain (from /proc), and its memory
per open socket (RSS growth while opening them, divided by N: uvicorn's and the
websockets protocol's per-connection cost included, not only our tracking).

    .venv/bin/python -m bench.drain [--sockets 5000] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from bench.common import Uvicorn, redis_server, save, table
from spa_version.protocol import CLOSE_CODE_DRAIN
from spa_version.stores import open_store

TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def bump(url: str, label: str) -> None:
    store = open_store(url, app="bench")
    try:
        await store.bump(label)
    finally:
        await store.aclose()


async def hold(
    ws_url: str, count: int, opened: list[int], closes: list[tuple[float, int | None]]
) -> list[Any]:
    """Open *count* idle websockets in batches; each records (time, close code) when closed."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def one(ready: asyncio.Event) -> None:
        async with connect(ws_url, ping_interval=None, open_timeout=60, max_queue=1) as ws:
            opened[0] += 1
            ready.set()
            with contextlib.suppress(ConnectionClosed):  # how the close arrives
                await ws.recv()
            closes.append((time.monotonic(), ws.close_code))

    tasks = []
    for start in range(0, count, 250):  # batches keep the listen backlog from overflowing
        events = [asyncio.Event() for _ in range(min(250, count - start))]
        tasks += [asyncio.create_task(one(event)) for event in events]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), 120)
    return tasks


async def run(args: argparse.Namespace, redis_url: str, server: Uvicorn) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    opened = [0]
    closes: list[tuple[float, int | None]] = []
    rss_before = rss_bytes(pid)
    tasks = await hold(server.ws_url, args.sockets, opened, closes)
    rss_after = rss_bytes(pid)
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    await bump(redis_url, "bench-2")
    await asyncio.wait_for(asyncio.gather(*tasks), args.window + 60)
    cpu_used = cpu_seconds(pid) - cpu_before
    times = sorted(t - started for t, code in closes if code == CLOSE_CODE_DRAIN)
    other = [code for _, code in closes if code != CLOSE_CODE_DRAIN]
    bins = [0] * max(1, int(args.window + 0.999))
    for t in times:
        bins[min(len(bins) - 1, int(t))] += 1
    mean = len(times) / len(bins)
    return {
        "sockets": opened[0],
        "closed_1012": len(times),
        "other_closes": other[:10],
        "first_close_s": times[0] if times else None,
        "last_close_s": times[-1] if times else None,
        "closes_per_second": bins,
        "max_over_mean": max(bins) / mean if mean else None,
        "cpu_seconds": cpu_used,
        "rss_per_socket_bytes": (rss_after - rss_before) / max(1, opened[0]),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args(argv)
    with redis_server() as redis:
        asyncio.run(bump(redis.url, "bench-1"))
        env = {"BENCH_STORE_URL": redis.url, "BENCH_APP": "bench", "BENCH_DRAIN_WINDOW": str(args.window)}
        with Uvicorn("drain", env=env, extra=["--ws", "websockets-sansio", "--backlog", "4096"]) as server:
            result = asyncio.run(run(args, redis.url, server))
    ok = result["max_over_mean"] is not None and result["max_over_mean"] <= 1.3
    rows = [
        ["idle websockets opened", result["sockets"]],
        ["closed with 1012", result["closed_1012"]],
        ["other closes (codes)", result["other_closes"] or "none"],
        [
            "first / last close after the bump (s)",
            f"{result['first_close_s']:.2f} / {result['last_close_s']:.2f}",
        ],
        [
            f"closes per second over W = {args.window:g} s",
            " ".join(str(b) for b in result["closes_per_second"]),
        ],
        [
            "max / mean closes per second (target <= 1.3)",
            f"{result['max_over_mean']:.3f} ({'met' if ok else 'MISSED'})",
        ],
        ["server CPU during the drain (s)", f"{result['cpu_seconds']:.2f}"],
        ["server RSS per open websocket (bytes)", f"{result['rss_per_socket_bytes']:,.0f}"],
    ]
    text = table(f"Drain: {args.sockets:,} idle websockets, one uvicorn process, window {args.window:g} s",
                 ["measure", "value"], rows)  # fmt: skip
    save("drain", {"args": vars(args), **result}, text)
    return result


if __name__ == "__main__":
    main()
