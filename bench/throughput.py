"""Throughput under wrk, bare app vs ours vs peers, plus Redis commands per request.

Each round starts every variant under uvicorn (one worker, httptools) in a rotated
order, warms it up, then runs wrk from another process while counting the commands
Redis executes (INFO commandstats before and after). Ratios compare each variant with
the bare app *of the same round*, so machine noise between rounds largely cancels.

    .venv/bin/python -m bench.throughput [--rounds 5] [--seconds 4] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.apps import VARIANTS
from bench.common import CommandCounter, Uvicorn, get, median, redis_server, save, table, wrk

EXPECTED_HEADER = {
    "header": "x-spa-version",
    "wrap": "x-spa-version",
    "ours": "x-spa-version",
    "naive": "x-spa-version",
    "basehttp": "x-spa-version",
}
EXPECTED_HEADER["correlation"] = "x-request-id"


def seed(url: str) -> None:
    """One release in the store, so ours and naive stamp something."""
    from spa_version.stores import open_store

    async def go() -> None:
        store = open_store(url, app="bench")
        try:
            await store.bump("bench-1")
        finally:
            await store.aclose()

    asyncio.run(go())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with redis_server() as redis:
        seed(redis.url)
        env = {"BENCH_STORE_URL": redis.url, "BENCH_APP": "bench"}
        counter = CommandCounter(redis)
        for round_no in range(args.rounds):
            order = VARIANTS[round_no % len(VARIANTS) :] + VARIANTS[: round_no % len(VARIANTS)]
            this_round: dict[str, float] = {}
            for variant in order:
                with Uvicorn(variant, env=env) as server:
                    status, headers, body = get(server.url + "/")
                    assert status == 200 and body == b"ok", (variant, status, body)
                    if variant in EXPECTED_HEADER:  # measure the real thing, not a no-op
                        assert EXPECTED_HEADER[variant] in headers, (variant, headers)
                    wrk(server.url + "/", 1, args.connections)  # warm-up
                    counter.since()
                    result = wrk(server.url + "/", args.seconds, args.connections)
                    result["redis_commands"] = counter.since()
                    runs[variant].append(result)
                    this_round[variant] = result["rps"]
                    print(
                        f"round {round_no + 1}/{args.rounds} {variant:12} {result['rps']:10,.0f} req/s",
                        flush=True,
                    )
            for variant in VARIANTS:
                ratios[variant].append(this_round[variant] / this_round["bare"])
        counter.close()
    rows = []
    for variant in VARIANTS:
        r = runs[variant]
        requests = sum(x["requests"] for x in r)
        commands = sum(x["redis_commands"] for x in r)
        rows.append(
            [
                variant,
                median([x["rps"] for x in r]),
                median(ratios[variant]),
                median([x["rps"] for x in r]) / median([x["rps"] for x in runs["bare"]]),
                f"{min(ratios[variant]):.3f}-{max(ratios[variant]):.3f}",
                median([x["p50_ms"] for x in r]),
                median([x["p99_ms"] for x in r]),
                int(sum(x["errors"] for x in r)),
                int(commands),
                f"{commands / requests:.6f}",
            ]
        )
    text = table(
        f"Throughput: wrk -t1 -c{args.connections} -d{args.seconds:g}s, {args.rounds} alternating rounds",
        [
            "variant",
            "req/s (median)",
            "× bare (median of rounds)",
            "× bare (ratio of medians)",
            "× bare (range)",
            "p50 ms",
            "p99 ms",
            "errors",
            "Redis cmds during runs",
            "Redis cmds / request",
        ],  # fmt: skip
        rows,
    )
    data = {"args": vars(args), "runs": runs, "ratios": ratios}
    save("throughput", data, text)
    return data


if __name__ == "__main__":
    main()
