"""Shared pieces of the benchmarks: real servers, wrk, Redis counters, tables."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisServer, free_port, wait_for  # noqa: E402

__all__ = [
    "RedisServer",
    "Uvicorn",
    "Gunicorn",
    "free_port",
    "wait_for",
    "wrk",
    "CommandCounter",
    "table",
    "save",
]


class Uvicorn:
    """``uvicorn bench.apps:app`` (or *target*) in a subprocess (a real server, its own process)."""

    def __init__(
        self,
        variant: str,
        env: dict[str, str] | None = None,
        workers: int = 1,
        extra: list[str] | None = None,
        cpus: set[int] | None = None,
        target: str = "bench.apps:app",
        ready_path: str = "/",
    ) -> None:
        self.target = target
        self.ready_path = ready_path
        self.extra = extra or []
        self.cpus = cpus
        self.port = free_port()
        self.variant = variant
        self.env = {**os.environ, "BENCH_VARIANT": variant, **(env or {})}
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> Uvicorn:
        self.proc = subprocess.Popen(self.args(), cwd=ROOT, env=self.env, preexec_fn=pin_to(self.cpus))
        wait_for(self._ready, timeout=30, interval=0.05)
        return self

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "uvicorn", self.target, "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        args += ["--http", "httptools", "--lifespan", "on"]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        return args + self.extra

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.args()[2]} ({self.variant}) exited with {self.proc.returncode}")
        try:
            return get(self.url + self.ready_path)[0] == 200
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Gunicorn(Uvicorn):
    """``gunicorn`` with *workers* sync workers serving the WSGI *target*, in a subprocess.

    `pid` is the master's; `worker_pids` the workers' (the processes that serve).
    """

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "gunicorn", self.target, "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", str(self.workers), "--worker-class", "sync", "--log-level", "warning"]
        return args + self.extra

    def worker_pids(self) -> list[int]:
        return children(self.pid)


def children(pid: int) -> list[int]:
    """The direct children of *pid* (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection: (status, lowercase headers, body)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    conn = http.client.HTTPConnection(name, int(port), timeout=5)
    try:
        conn.request("GET", "/" + rest, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def pin_to(cpus: set[int] | None) -> Any:
    """A ``preexec_fn`` that keeps a child process on *cpus* (None: wherever the OS likes).

    On a 2-core machine, a server and its load generator that the scheduler moves
    around share cores differently from one run to the next, which the ratios then
    mistake for a difference between variants.
    """
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def cpu_seconds(pid: int) -> float:
    """CPU time a process's threads have run so far, in seconds, at nanosecond resolution.

    From ``/proc/<pid>/task/*/schedstat`` (first field: ns on a CPU). It leaves out the
    time the process waited for a CPU that another process held, but not the time the
    hypervisor gave to another guest, so on a shared VM it moves with throughput (see
    docs/benchmarks.md: the two ratios agree).
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(the server's CPU, the others) when there are at least 2, else None."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None
    return {available[-1]}, set(available[:-1])


def wrk(
    url: str,
    seconds: float,
    connections: int = 16,
    threads: int = 1,
    cpus: set[int] | None = None,
    origin: str | None = None,
) -> dict[str, float]:
    """Run wrk against *url*: requests/s, total requests, errors (non-2xx included).

    *origin*: send this ``Origin`` header with every request.
    """
    extra = ["-H", f"Origin: {origin}"] if origin else []
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", *extra, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        preexec_fn=pin_to(cpus),
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (
        r"Non-2xx or 3xx responses: (\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        match = re.search(pattern, out)
        if match:
            errors += sum(int(g) for g in match.groups())
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return {"rps": rps, "requests": total, "errors": errors, "p50_ms": _ms(p50), "p99_ms": _ms(p99)}


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


class CommandCounter:
    """Commands Redis has executed (INFO commandstats, summed), read over one kept connection.

    The connection is opened once, so the only command of ours between two readings
    is the earlier INFO itself, which `since` subtracts.
    """

    def __init__(self, server: RedisServer) -> None:
        import redis

        self.client = redis.Redis(port=server.port)
        self.last = self._total()

    def _total(self) -> int:
        return sum(int(v["calls"]) for v in self.client.info("commandstats").values())

    def since(self) -> int:
        """Commands executed since the previous reading, ours excluded."""
        now = self._total()
        count, self.last = now - self.last - 1, now
        return count

    def close(self) -> None:
        self.client.close()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, printed and returned."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return (
            f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
        )
    return str(value)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_at_start": os.getloadavg(),
    }


def save(name: str, data: dict[str, Any], markdown: str) -> None:
    """Write bench/results/NAME.json and NAME.md."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(markdown)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
