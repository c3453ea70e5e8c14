"""Throughput under wrk, bare app vs ours vs peers, plus Redis commands per request.

Every variant runs under its own uvicorn (one worker, httptools), all started at once
and pinned to one CPU, with wrk (and Redis) on the others. Each round then gives every
variant a short wrk burst, in a rotated order, while counting the commands Redis
executes (INFO commandstats before and after). Ratios compare each variant with the
bare app *of the same round*, a few seconds apart, so the slow spells of a shared
machine hit both alike; the median over many short rounds is the figure.

    .venv/bin/python -m bench.throughput [--rounds 24] [--seconds 1] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from typing import Any

from bench.apps import VARIANTS
from bench.common import (
    CommandCounter,
    Uvicorn,
    cpu_seconds,
    get,
    median,
    redis_server,
    save,
    split_cpus,
    table,
    wrk,
)

EXPECTED_HEADER = {
    "header": "x-spa-version",
    "wrap": "x-spa-version",
    "ours": "x-spa-version",
    "naive": "x-spa-version",
    "basehttp": "x-spa-version",
}
EXPECTED_HEADER["correlation"] = "x-request-id"
# The variants that talk to Redis at all. All servers run throughout, so ours' background
# commands (pub/sub PING, re-reads, heartbeats) land in whichever burst is running; only
# these two rows count them, during their own bursts.
REDIS_VARIANTS = ("ours", "naive")


def middle_half(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles: where the middle half of the rounds fell."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


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
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin uvicorn and wrk to separate CPUs"
    )
    args = parser.parse_args(argv)
    # uvicorn alone on one CPU, wrk (and everything else we start) on the rest.
    split = split_cpus() if args.pin else None
    server_cpus, client_cpus = split if split is not None else (None, None)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with redis_server() as redis:
        seed(redis.url)
        env = {"BENCH_STORE_URL": redis.url, "BENCH_APP": "bench"}
        counter = CommandCounter(redis)
        with contextlib.ExitStack() as stack:
            servers = {v: stack.enter_context(Uvicorn(v, env=env, cpus=server_cpus)) for v in VARIANTS}
            for variant, server in servers.items():
                status, headers, body = get(server.url + "/")
                assert status == 200 and body == b"ok", (variant, status, body)
                if variant in EXPECTED_HEADER:  # measure the real thing, not a no-op
                    assert EXPECTED_HEADER[variant] in headers, (variant, headers)
                wrk(server.url + "/", 1, args.connections, cpus=client_cpus)  # warm-up
            for round_no in range(args.rounds):
                order = VARIANTS[round_no % len(VARIANTS) :] + VARIANTS[: round_no % len(VARIANTS)]
                this_round: dict[str, float] = {}
                for variant in order:
                    pid = servers[variant].pid
                    counter.since()
                    cpu_before = cpu_seconds(pid)
                    result = wrk(servers[variant].url + "/", args.seconds, args.connections, cpus=client_cpus)
                    result["cpu_us_per_request"] = (cpu_seconds(pid) - cpu_before) / result["requests"] * 1e6
                    result["redis_commands"] = counter.since()
                    runs[variant].append(result)
                    this_round[variant] = result["rps"]
                for variant in VARIANTS:
                    ratios[variant].append(this_round[variant] / this_round["bare"])
                print(
                    f"round {round_no + 1}/{args.rounds} "
                    + " ".join(f"{v} {ratios[v][-1]:.3f}" for v in VARIANTS),
                    flush=True,
                )
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
                "{:.3f}-{:.3f}".format(*middle_half(ratios[variant])),
                median([x["cpu_us_per_request"] for x in r]),
                median(
                    [
                        b["cpu_us_per_request"] / x["cpu_us_per_request"]
                        for x, b in zip(r, runs["bare"], strict=True)
                    ]
                ),
                median([x["p50_ms"] for x in r]),
                median([x["p99_ms"] for x in r]),
                int(sum(x["errors"] for x in r)),
                int(commands) if variant in REDIS_VARIANTS else "-",
                f"{commands / requests:.6f}" if variant in REDIS_VARIANTS else "-",
            ]
        )
    text = table(
        f"Throughput: wrk -t1 -c{args.connections} -d{args.seconds:g}s, {args.rounds} alternating rounds",
        [
            "variant",
            "req/s (median)",
            "× bare (median of rounds)",
            "× bare (ratio of medians)",
            "× bare (middle half of rounds)",
            "server CPU µs / request (median)",
            "× bare by server CPU (median of rounds)",
            "p50 ms",
            "p99 ms",
            "errors",
            "Redis cmds during its bursts",
            "Redis cmds / request",
        ],  # fmt: skip
        rows,
    )
    data = {"args": vars(args), "runs": runs, "ratios": ratios}
    save("throughput", data, text)
    return data


if __name__ == "__main__":
    main()
