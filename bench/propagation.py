"""Propagation: time from a bump to every one of 4 uvicorn workers stamping the new epoch.

uvicorn runs ``bench.apps:app`` (ours) with ``--workers 4``. Each worker records the
``time.monotonic()`` at which its `CurrentVersion` switched to each epoch (CLOCK_MONOTONIC
is one clock for all processes on Linux), and reports it with its pid at
``/__bench/switches``. The benchmark bumps, polls that endpoint over fresh connections
until all 4 pids have switched, and takes the slowest worker's switch time minus the
moment the bump started. Run for Redis (pub/sub) and for the embedded file store (the
workers poll the file).

    .venv/bin/python -m bench.propagation [--bumps 50] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from typing import Any

from bench.common import Uvicorn, get, median, percentile, redis_server, save, table
from spa_version.stores import Store, open_store


def switches(url: str, workers: int, epoch: int, timeout: float = 15.0) -> dict[int, float]:
    """Poll until *workers* distinct pids report a switch to *epoch*: {pid: monotonic time}."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    for _ in range(5000):  # bounded in count as well as in time
        status, _, body = get(url + "/__bench/switches")
        if status == 200:
            data = json.loads(body)
            at = data["switches"].get(str(epoch))
            if at is not None:
                seen[int(data["pid"])] = float(at)
        if len(seen) >= workers:
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError(
        f"only {len(seen)} of {workers} workers switched to epoch {epoch} within {timeout} s"
    )


def run_store(kind: str, store_url: str, args: argparse.Namespace, detail: dict[str, Any]) -> list[float]:
    """Latencies (ms) from bump start to the last worker switching, one per bump.

    *detail* gets, per bump, every worker's own latency (sorted) and the load average,
    so an outlier can be told apart: one late worker is scheduling, all late is the store.
    """
    env = {"BENCH_STORE_URL": store_url, "BENCH_APP": "bench"}
    latencies: list[float] = []
    detail[kind] = []

    async def bump(store: Store, label: str) -> int:
        return (await store.bump(label)).release.epoch

    loop = asyncio.new_event_loop()
    store = open_store(store_url, app="bench")
    try:
        epoch = loop.run_until_complete(bump(store, "warm-0"))
        with Uvicorn("ours", env=env, workers=args.workers) as server:
            switches(server.url, args.workers, epoch, timeout=30)  # all workers up and synced
            for n in range(args.bumps):
                started = time.monotonic()
                epoch = loop.run_until_complete(bump(store, f"{kind}-{n}"))
                done = switches(server.url, args.workers, epoch)
                latencies.append((max(done.values()) - started) * 1000)
                per_worker = sorted(round((t - started) * 1000, 2) for t in done.values())
                detail[kind].append({"workers_ms": per_worker, "loadavg": os.getloadavg()[0]})
                print(f"{kind} bump {n + 1}/{args.bumps}: {latencies[-1]:.2f} ms", flush=True)
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()
    return latencies


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bumps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {}
    detail: dict[str, Any] = {}
    with redis_server() as redis:
        results["redis"] = run_store("redis", redis.url, args, detail)
    with tempfile.TemporaryDirectory(prefix="spa-bench-file-") as directory:
        results["file"] = run_store("file", f"file://{directory}", args, detail)
    targets = {"redis": "p99 < 20 ms", "file": "p99 < 1,500 ms"}
    limits = {"redis": 20.0, "file": 1500.0}
    rows = []
    for kind, values in results.items():
        p99 = percentile(values, 99)
        rows.append(
            [
                kind,
                len(values),
                median(values),
                percentile(values, 90),
                p99,
                max(values),
                targets[kind],
                "met" if p99 < limits[kind] else "MISSED",
            ]
        )
    text = table(
        f"Propagation: bump -> all {args.workers} uvicorn workers stamping it, {args.bumps} bumps (ms)",
        ["store", "bumps", "p50", "p90", "p99", "max", "target", "result"],
        rows,
    )
    # The slowest bumps, worker by worker: is one worker late (scheduling) or all (the store)?
    for kind in results:
        slow = sorted(detail[kind], key=lambda d: -d["workers_ms"][-1])[:3]
        lines = [f"- {kind}: workers at {d['workers_ms']} ms, load average {d['loadavg']:.2f}" for d in slow]
        text += f"\nSlowest {kind} bumps, each worker's latency:\n\n" + "\n".join(lines) + "\n"
    print(text[text.index("Slowest") :], flush=True)
    save("propagation", {"args": vars(args), "latencies_ms": results, "detail": detail}, text)
    return results


if __name__ == "__main__":
    main()
