"""Fan-out: a bump reaching 10, 100 and 1,000 listeners, each with its own Redis connections.

A real worker runs one `Listener` on one `RedisStore` (its own client: one pub/sub
connection, one command connection). This machine cannot hold 1,000 worker processes, so
the listeners are spread over a few processes (``--processes``, 4 by default), each
running its share of complete, independent listeners on one event loop: a
`RedisStore` (own client, own connections), a `CurrentVersion` and a `Listener` each,
exactly what `spa_version.VersionMiddleware` starts per worker. Each `CurrentVersion`
has an observer that records ``time.monotonic()`` (one clock for every process on
Linux) when it switches to an epoch.

Per N: the children start and sync; then an idle window (the listeners' pub/sub
PINGs and re-reads, nothing else) for CPU at rest; then bumps, each timed from just
before the bump to the last listener switching. Redis figures come from the private
redis-server's ``INFO memory`` and ``CLIENT LIST`` and its process CPU time.

The file store is measured the same way with one listener per process (``--file-processes``,
64 by default: what one big host runs), each polling the file.

    .venv/bin/python -m bench.fanout [--sizes 10,100,1000] [--bumps 20] [--idle 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, RedisServer, cpu_seconds, median, percentile, save, table
from spa_version.stores import open_store

TARGET_P99_MS = 50.0


# -- the child: N listeners in one process -------------------------------------------------


async def child(url: str, count: int) -> None:
    """Run *count* listeners on *url*; answer the parent's commands on stdin/stdout."""
    from spa_version.current import CurrentVersion
    from spa_version.listener import Listener

    switched: list[dict[int, float]] = [{} for _ in range(count)]
    arrivals: dict[int, int] = {}
    complete: dict[int, asyncio.Event] = {}

    def event(epoch: int) -> asyncio.Event:
        return complete.setdefault(epoch, asyncio.Event())

    def observer(index: int) -> Any:
        def record(old: Any, new: Any) -> None:
            if new.release is None:
                return
            epoch = new.release.epoch
            switched[index][epoch] = time.monotonic()
            arrivals[epoch] = arrivals.get(epoch, 0) + 1
            if arrivals[epoch] == count:
                event(epoch).set()

        return record

    stores, listeners, tasks = [], [], []
    for index in range(count):
        store = open_store(url, app="bench")  # its own client: its own connections
        current = CurrentVersion("x-spa-version")
        current.add_observer(observer(index))
        listener = Listener(store, current)
        stores.append(store)
        listeners.append(listener)
        tasks.append(asyncio.create_task(listener.run()))
    loop = asyncio.get_running_loop()
    profiler = None
    try:
        await asyncio.wait_for(asyncio.gather(*(x.synced.wait() for x in listeners)), 60)
        reply({"ready": count, "pid": os.getpid()})
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # the parent went away
                return
            command = json.loads(line)
            if "wait" in command:
                epoch = int(command["wait"])
                with contextlib.suppress(asyncio.TimeoutError):  # the parent sees the missing ones
                    await asyncio.wait_for(event(epoch).wait(), command.get("timeout", 10))
                reply({"times": [s.get(epoch) for s in switched]})
            elif "profile" in command:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005, async_mode="disabled")
                profiler.start()
                reply({"profiling": True})
            elif "stop" in command:
                return
    finally:
        if profiler is not None:
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            # And by self time, library frames included: where the per-message work goes.
            text += "\n" + profiler.output_text(unicode=False, color=False, flat=True, show_all=True)
            Path(os.environ["BENCH_FANOUT_PROFILE"]).write_text(text)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            with contextlib.suppress(Exception):
                await store.aclose()


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# -- the parent -----------------------------------------------------------------------------


class Children:
    """*processes* child processes sharing *total* listeners on *url*, as close to even as can be."""

    def __init__(self, url: str, total: int, processes: int, profile: Path | None = None) -> None:
        self.url = url
        self.profile = profile
        self.counts = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
        self.counts = [c for c in self.counts if c]
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Children:
        for count in self.counts:
            env = {**os.environ, "BENCH_FANOUT_PROFILE": str(self.profile or "")}
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.fanout", "--child", self.url, str(count)],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for proc in self.procs:
            self.read(proc, timeout=120)  # {"ready": ...}
        return self

    def start_profile(self) -> None:
        """From now until it stops, the first child profiles itself (written when it exits)."""
        if self.profile is None:
            return
        proc = self.procs[0]
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"profile": True}) + "\n")
        proc.stdin.flush()
        self.read(proc, timeout=30)

    def read(self, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"child {proc.pid} said nothing within {timeout} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {proc.pid} exited with {proc.wait(timeout=10)}")
        return dict(json.loads(line))

    def send(self, command: dict[str, Any]) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()

    def wait(self, epoch: int, timeout: float = 10) -> list[list[float | None]]:
        """Every listener's switch time to *epoch*, process by process (None: not within *timeout*)."""
        self.send({"wait": epoch, "timeout": timeout})
        return [self.read(proc, timeout + 30)["times"] for proc in self.procs]

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def rss(self) -> int:
        return sum(rss_bytes(p.pid) for p in self.procs)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.send({"stop": True})
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (children and redis-server inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def redis_info(client: Any) -> dict[str, Any]:
    memory = client.info("memory")
    pubsub = client.client_list(_type="pubsub")
    return {
        "used_memory": int(memory["used_memory"]),
        "connected_clients": int(client.info("clients")["connected_clients"]),
        "pubsub_clients": len(pubsub),
        "pubsub_client_mem": sum(int(c.get("tot-mem", 0)) for c in pubsub),
    }


def measure(
    kind: str,
    url: str,
    n: int,
    processes: int,
    args: argparse.Namespace,
    redis: RedisServer | None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One fleet of *n* listeners in *processes* processes: idle costs, then bumps."""
    loop = asyncio.new_event_loop()
    store = open_store(url, app="bench")
    client = None
    if redis is not None:
        import redis as redis_py

        client = redis_py.Redis(port=redis.port)
    try:
        before = redis_info(client) if client else None
        started = time.monotonic()
        with Children(url, n, processes, profile) as children:
            ready_s = time.monotonic() - started
            after = redis_info(client) if client else None
            # At rest: what N idle listeners cost (PINGs, periodic re-reads, poll wake-ups).
            redis_cpu0 = cpu_seconds(redis.proc.pid) if redis and redis.proc else 0.0
            child_cpu0 = children.cpu()
            time.sleep(args.idle)  # the quantity measured: a quiet window of fixed length
            idle_redis = (cpu_seconds(redis.proc.pid) if redis and redis.proc else 0.0) - redis_cpu0
            idle_child = children.cpu() - child_cpu0
            rss = children.rss()
            per_bump: list[float] = []
            first_per_process: list[float] = []
            per_listener: list[float] = []
            missing = 0
            receivers: list[int] = []
            children.start_profile()
            redis_cpu0 = cpu_seconds(redis.proc.pid) if redis and redis.proc else 0.0
            child_cpu0 = children.cpu()
            window0 = time.monotonic()
            for number in range(args.bumps):
                t0 = time.monotonic()
                result = loop.run_until_complete(store.bump(f"{kind}-{n}-{number}"))
                by_process = children.wait(result.release.epoch)
                receivers.append(result.receivers)
                for times in by_process:
                    got = [(t - t0) * 1000 for t in times if t is not None]
                    missing += len(times) - len(got)
                    per_listener += got
                    if got:
                        first_per_process.append(min(got))
                slowest = max((t for times in by_process for t in times if t is not None), default=None)
                per_bump.append((slowest - t0) * 1000 if slowest is not None else float("inf"))
                print(f"{kind} N={n} bump {number + 1}/{args.bumps}: {per_bump[-1]:.1f} ms", flush=True)
            window = time.monotonic() - window0
            bump_redis = (cpu_seconds(redis.proc.pid) if redis and redis.proc else 0.0) - redis_cpu0
            bump_child = children.cpu() - child_cpu0
            # What the bumps cost on top of the idle rate over the same length of time.
            bump_redis -= window * (idle_redis - args.redis_idle_baseline * args.idle) / args.idle
            bump_child -= window * idle_child / args.idle
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()
        if client is not None:
            client.close()
    out: dict[str, Any] = {
        "store": kind,
        "listeners": n,
        "processes": len(Children(url, n, processes).counts),
        "profiled": str(profile.relative_to(ROOT)) if profile else None,
        "startup_s": ready_s,
        "per_bump_ms": per_bump,
        "per_listener_ms_p50": percentile(per_listener, 50),
        "per_listener_ms_p99": percentile(per_listener, 99),
        "first_in_process_ms_p50": percentile(first_per_process, 50),
        "missing": missing,
        "idle_seconds": args.idle,
        "idle_redis_cpu_us_per_listener_per_s": (idle_redis / args.idle - args.redis_idle_baseline) / n * 1e6,
        "idle_client_cpu_us_per_listener_per_s": idle_child / n / args.idle * 1e6,
        "bump_redis_cpu_us_per_listener": bump_redis / n / max(1, args.bumps) * 1e6,
        "bump_client_cpu_us_per_listener": bump_child / n / max(1, args.bumps) * 1e6,
        "client_rss_bytes": rss,
    }
    if before is not None and after is not None:
        out["receivers"] = receivers
        out["redis_before"] = before
        out["redis_after"] = after
        out["redis_memory_per_listener_bytes"] = (after["used_memory"] - before["used_memory"]) / n
        out["pubsub_client_mem_avg_bytes"] = after["pubsub_client_mem"] / max(1, after["pubsub_clients"])
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--bumps", type=int, default=20)
    parser.add_argument("--idle", type=float, default=8.0, help="seconds of the idle window")
    parser.add_argument("--file-processes", type=int, default=64)
    parser.add_argument("--file-bumps", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.child[0], int(args.child[1])))
        return {}
    sizes = [int(x) for x in args.sizes.split(",")]
    # Each listener holds 2 sockets (pub/sub + commands) in its process and in Redis.
    fd_limit = raise_fd_limit(2 * max(sizes) + 1024)
    results: list[dict[str, Any]] = []
    redis = RedisServer("--maxclients", str(2 * max(sizes) + 1000))
    redis.start()
    try:
        seed = open_store(redis.url, app="bench")
        asyncio.run(_bump_and_close(seed, "warm"))
        # Redis' own CPU at rest with no listener (its timers), taken off the idle figures.
        assert redis.proc is not None
        before = cpu_seconds(redis.proc.pid)
        time.sleep(args.idle)  # the quantity measured: a quiet window of fixed length
        args.redis_idle_baseline = (cpu_seconds(redis.proc.pid) - before) / args.idle
        for n in sizes:
            profile = RESULTS / "profile-fanout-listeners.txt" if n == max(sizes) else None
            results.append(measure("redis", redis.url, n, args.processes, args, redis, profile))
    finally:
        redis.close()
    with tempfile.TemporaryDirectory(prefix="spa-bench-fanout-") as directory:
        url = f"file://{directory}"
        asyncio.run(_bump_and_close(open_store(url, app="bench"), "warm"))
        file_args = argparse.Namespace(**{**vars(args), "bumps": args.file_bumps, "redis_idle_baseline": 0.0})
        results.append(measure("file", url, args.file_processes, args.file_processes, file_args, None))
    text = report(args, results, fd_limit)
    save("fanout", {"args": vars(args), "fd_soft_limit": fd_limit, "results": results}, text)
    return {"results": results}


async def _bump_and_close(store: Any, label: str) -> None:
    try:
        await store.bump(label)
    finally:
        await store.aclose()


def report(args: argparse.Namespace, results: list[dict[str, Any]], fd_limit: int) -> str:
    rows = []
    for r in results:
        bumps = r["per_bump_ms"]
        p99 = percentile(bumps, 99)
        target = ""
        if r["store"] == "redis" and r["listeners"] >= 1000:
            target = f"p99 < {TARGET_P99_MS:g} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'}"
        rows.append(
            [
                r["store"],
                f"{r['listeners']:,} in {r['processes']} processes",
                len(bumps),
                median(bumps),
                p99,
                max(bumps),
                f"{r['per_listener_ms_p50']:.1f} / {r['per_listener_ms_p99']:.1f}",
                r["first_in_process_ms_p50"],
                r["missing"],
                target,
            ]
        )
    text = table(
        "Fan-out: bump -> every listener serving the new epoch (ms; p99 of the per-bump slowest listener)",
        [
            "store",
            "listeners",
            "bumps",
            "p50",
            "p99",
            "max",
            "one listener p50 / p99",
            "first listener of each process, p50",
            "missed (10 s)",
            "target",
        ],
        rows,
    )
    rows = []
    for r in results:
        redis_mem = r.get("redis_memory_per_listener_bytes")
        rows.append(
            [
                r["store"],
                f"{r['listeners']:,}",
                f"{redis_mem:,.0f}" if redis_mem is not None else "-",
                f"{r['pubsub_client_mem_avg_bytes']:,.0f}" if "pubsub_client_mem_avg_bytes" in r else "-",
                f"{r['idle_redis_cpu_us_per_listener_per_s']:.2f}" if r["store"] == "redis" else "-",
                f"{r['idle_client_cpu_us_per_listener_per_s']:.1f}",
                f"{r['bump_redis_cpu_us_per_listener']:.2f}" if r["store"] == "redis" else "-",
                f"{r['bump_client_cpu_us_per_listener']:.1f}",
                f"{r['client_rss_bytes'] / r['listeners'] / 1024:,.0f}",
                f"{r['startup_s']:.1f}",
            ]
        )
    text += "\n" + table(
        f"Fan-out: cost per listener (idle window {args.idle:g} s; Redis alone at rest: "
        f"{args.redis_idle_baseline * 1e6:,.0f} µs/s, taken off; CPU per bump net of the idle rate; "
        f"fd soft limit {fd_limit})",
        [
            "store",
            "listeners",
            "Redis used_memory per listener (B)",
            "Redis tot-mem per pub/sub client (B)",
            "Redis CPU at idle (µs/s per listener)",
            "listener-process CPU at idle (µs/s per listener)",
            "Redis CPU per bump (µs per listener)",
            "listener-process CPU per bump (µs per listener)",
            "listener-process RSS per listener (KiB)",
            "start + sync (s)",
        ],
        rows,
    )
    return text


if __name__ == "__main__":
    main()
