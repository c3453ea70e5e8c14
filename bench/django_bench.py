"""Django: what ``spa_version.django.VersionMiddleware`` costs, next to the floor and a peer.

Four variants of one Django project (`bench.django_app`): ``bare`` (no middleware),
``floor`` (a middleware that sets one precomputed header: the least any stamping
middleware can cost), ``ours`` and ``cors`` (django-cors-headers). Every request carries
an allowed ``Origin``, so the CORS middleware does its usual work.

1. In process, no server, no socket, rotated order in every round: each variant's
   middleware alone around the view (sync, and awaited on one event loop for the async
   path), many short rounds, which resolves fractions of a µs; then Django's whole
   ``WSGIHandler``; then each step of ours timed alone. The figures are medians over
   rounds of each variant minus the floor (or bare) in the same round.
2. Throughput under real servers: gunicorn (1 sync worker) for WSGI and uvicorn for
   ASGI, all eight servers started at once and pinned to one CPU, wrk on the other.
   Every round gives every server one short burst in rotated order; ratios compare with
   the floor (and bare) of the same server kind in the same round.

    .venv/bin/python -m bench.django_bench [--rounds 12] [--layer-rounds 800] [--calls 250] [--wrk-rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import sys
import time
from typing import Any

from bench.common import (
    RESULTS,
    Gunicorn,
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
from bench.django_app import DJANGO_VARIANTS, MIDDLEWARE_BY_VARIANT, ORIGIN

#: A second instance of ours in the layer rounds: what it differs from ours by is the
#: instrument's own noise (an A/A check), printed beside the verdicts.
AGAIN = "ours again"
STAMPING = ("floor", "ours", AGAIN)
#: What ours must stamp (the release the benchmark bumps); the floor stamps the same.
LABEL = "bench-1"


def seed(url: str) -> str:
    """One release in the store; returns the header value ours will stamp."""
    from spa_version.protocol import format_header
    from spa_version.stores import open_store

    async def go() -> str:
        store = open_store(url, app="bench")
        try:
            return format_header((await store.bump(LABEL)).release)
        finally:
            await store.aclose()

    return asyncio.run(go())


def rotated(round_no: int, items: tuple[str, ...] = DJANGO_VARIANTS) -> tuple[str, ...]:
    k = round_no % len(items)
    return items[k:] + items[:k]


# -- in process ---------------------------------------------------------------------------


def environ() -> dict[str, Any]:
    """A fresh WSGI environ for ``GET /``, as gunicorn builds one (PEP 3333)."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "HTTP_ORIGIN": ORIGIN,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def run_wsgi(handler: Any, n: int) -> tuple[float, dict[str, str]]:
    """Seconds for *n* requests through *handler*, and the last response's headers."""
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        assert status.startswith("200"), status
        headers[:] = response_headers
        return None

    started = time.perf_counter()
    for _ in range(n):
        response = handler(environ(), start_response)
        for _chunk in response:
            pass
        response.close()  # request_finished, as every WSGI server calls it
    return time.perf_counter() - started, {k.lower(): v for k, v in headers}


def run_layer(middleware: Any, n: int) -> tuple[float, dict[str, str]]:
    """Seconds for *n* calls of one middleware layer (sync) on a fresh request each."""
    from django.core.handlers.wsgi import WSGIRequest

    response = None
    started = time.perf_counter()
    for _ in range(n):
        response = middleware(WSGIRequest(environ()))
    elapsed = time.perf_counter() - started
    assert response is not None and response.status_code == 200
    return elapsed, {k.lower(): v for k, v in response.items()}


async def run_layer_async(middleware: Any, n: int) -> tuple[float, dict[str, str]]:
    """`run_layer` for the async path: the layer awaited on this event loop."""
    from django.core.handlers.wsgi import WSGIRequest

    response = None
    started = time.perf_counter()
    for _ in range(n):
        response = await middleware(WSGIRequest(environ()))
    elapsed = time.perf_counter() - started
    assert response is not None and response.status_code == 200
    return elapsed, {k.lower(): v for k, v in response.items()}


def layers(is_async: bool) -> dict[str, Any]:
    """Each variant's middleware around the view alone (bare: the view itself)."""
    from django.utils.module_loading import import_string

    from bench.django_app import async_index, index

    view = async_index if is_async else index
    made: dict[str, Any] = {}
    for variant in DJANGO_VARIANTS:
        chain = MIDDLEWARE_BY_VARIANT[variant]
        made[variant] = import_string(chain[0])(view) if chain else view
    made[AGAIN] = import_string(MIDDLEWARE_BY_VARIANT["ours"][0])(view)
    return made


def handlers() -> dict[str, Any]:
    """One Django ``WSGIHandler`` per variant, each with that variant's middleware loaded."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    made = {}
    for variant in DJANGO_VARIANTS:
        # The chain is built once, in the handler's constructor, from settings.MIDDLEWARE.
        with override_settings(MIDDLEWARE=MIDDLEWARE_BY_VARIANT[variant]):
            made[variant] = WSGIHandler()
    return made


def check_headers(variant: str, headers: dict[str, str], expected: str) -> None:
    """Measure the real thing: the stamping variants stamp, the CORS one answers CORS."""
    if variant in STAMPING:
        assert headers.get("x-spa-version") == expected, (variant, headers)
    if variant == "cors":
        assert headers.get("access-control-allow-origin") == ORIGIN, (variant, headers)


def in_process(args: argparse.Namespace, store_url: str, expected: str) -> dict[str, dict[str, list[float]]]:
    import django
    from django.conf import settings

    from spa_version.django.listener_thread import stop_listener_thread

    django.setup()
    # The settings module was imported before the store existed: point it there now.
    # (Set directly, not with override_settings, whose settings holder makes every
    # settings read slower than a server's.)
    settings.SPA_VERSION = {"URL": store_url, "APP": "bench"}
    settings.FLOOR_VALUE = expected
    try:
        results = _in_process(args, expected)
        results["breakdown"] = breakdown(args.breakdown_calls)  # type: ignore[assignment]
        return results
    finally:
        stop_listener_thread()


def rounds_of(
    run: Any, targets: dict[str, Any], rounds: int, n: int, expected: str
) -> dict[str, list[float]]:
    """µs per call of each target, *rounds* rotated rounds of *n* calls each."""
    for variant, target in targets.items():
        check_headers(variant, run(target, max(200, n // 10))[1], expected)  # warm-up
    names = tuple(targets)
    per: dict[str, list[float]] = {v: [] for v in names}
    for round_no in range(rounds):
        for variant in rotated(round_no, names):
            # As timeit does: the cyclic collector off while timing, so that a collection
            # the previous variant's garbage set off is not charged to this one.
            gc.collect()
            gc.disable()
            try:
                seconds = run(targets[variant], n)[0]
            finally:
                gc.enable()
            per[variant].append(seconds / n * 1e6)
    return per


def _in_process(args: argparse.Namespace, expected: str) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    # The middleware layer alone, many short rounds: resolves fractions of a µs.
    results["layer (sync)"] = rounds_of(run_layer, layers(False), args.layer_rounds, args.calls, expected)

    def run_async(target: Any, n: int) -> tuple[float, dict[str, str]]:
        return loop.run_until_complete(run_layer_async(target, n))

    loop = asyncio.new_event_loop()
    try:
        async_layers = loop.run_until_complete(_make_async_layers())
        results["layer (async)"] = rounds_of(run_async, async_layers, args.layer_rounds, args.calls, expected)
    finally:
        loop.close()
    # The whole WSGI handler (request object, signals, URL resolving, close).
    wsgi = handlers()
    results["WSGIHandler"] = rounds_of(run_wsgi, wsgi, args.rounds, args.requests, expected)
    profile(layers(False)["ours"], wsgi["ours"], args.requests)
    return results


def breakdown(number: int = 100_000) -> list[tuple[str, float]]:
    """µs per call of each step ours takes per request (sync path), best of 5 (timeit).

    The steps of `spa_version.django.middleware.VersionMiddleware.__call__`, called one
    by one on a real request, response and the store's current snapshot, next to the
    one step the floor takes (setting the header).
    """
    import timeit

    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse

    from spa_version.django import middleware as ours
    from spa_version.django.conf import SERVING, settings_host, start_stamping
    from spa_version.django.listener_thread import listener_thread

    request = WSGIRequest(environ())
    response = HttpResponse(b"ok", content_type="text/plain")
    host = settings_host()
    listener_thread().serve(host)
    stamping = start_stamping(host)
    snapshot = stamping.snapshot
    assert snapshot.header is not None, "the listener must have read the release"
    steps = {
        "SERVING.stamping: the settings' host at its version, one attribute read": lambda: SERVING.stamping,
        "_own_response(request, host, snapshot)": lambda: ours._own_response(request, host, snapshot),
        # A new response each call (stamping an HTML one twice appends to its
        # Server-Timing): subtract the row "HttpResponse() itself".
        "stamping.stamp(HttpResponse()): text/plain, as the view's": lambda: stamping.stamp(
            HttpResponse(b"ok", content_type="text/plain")
        ),
        "stamping.stamp() on an HTML document (the Server-Timing metric too)": lambda: stamping.stamp(
            HttpResponse(b"ok", content_type="text/html")
        ),
        "- of which HttpResponse() itself": lambda: HttpResponse(b"ok", content_type="text/plain"),
        "- of which looking for Access-Control-Allow-Origin: response.headers.pop()": lambda: (
            response.headers.pop("Access-Control-Allow-Origin", None)
        ),
        "(not used: 'Access-Control-Allow-Origin' in headers, a raised KeyError)": lambda: (
            "Access-Control-Allow-Origin" in response.headers
        ),
        "the floor: response.headers[name] = value": lambda: response.headers.__setitem__(
            "X-SPA-Version", "1"
        ),
    }
    best = {name: min(timeit.repeat(step, number=number, repeat=5)) for name, step in steps.items()}
    return [(name, seconds / number * 1e6) for name, seconds in best.items()]


async def _make_async_layers() -> dict[str, Any]:
    return layers(True)


def profile(layer: Any, handler: Any, n: int) -> None:
    """pyinstrument over ours, the layer alone then the WSGI path (profile-django-ours.txt)."""
    from pyinstrument import Profiler

    texts = []
    for name, run in (("layer", lambda: run_layer(layer, n)), ("WSGIHandler", lambda: run_wsgi(handler, n))):
        profiler = Profiler(interval=0.0001, async_mode="disabled")
        profiler.start()
        run()
        profiler.stop()
        texts.append(f"# ours, {name}, {n:,} requests\n\n" + profiler.output_text(unicode=False, color=False))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile-django-ours.txt").write_text("\n".join(texts))


# -- under real servers -------------------------------------------------------------------


def throughput(args: argparse.Namespace, store_url: str, expected: str) -> dict[str, Any]:
    split = split_cpus()
    server_cpus, client_cpus = split if split is not None else (None, None)
    env = {
        "BENCH_STORE_URL": store_url,
        "BENCH_APP": "bench",
        "BENCH_HEADER_VALUE": expected,
        "DJANGO_SETTINGS_MODULE": "bench.django_app",
    }
    kinds = {"gunicorn": "/", "uvicorn": "/a"}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {k: {v: [] for v in DJANGO_VARIANTS} for k in kinds}
    with contextlib.ExitStack() as stack:
        servers: dict[tuple[str, str], Any] = {}
        for variant in DJANGO_VARIANTS:
            venv = {**env, "BENCH_DJANGO_VARIANT": variant}
            servers["gunicorn", variant] = stack.enter_context(
                Gunicorn(variant, env=venv, cpus=server_cpus, target="bench.django_app:application")
            )
            servers["uvicorn", variant] = stack.enter_context(
                Uvicorn(
                    variant,
                    env=venv,
                    cpus=server_cpus,
                    target="bench.django_app:asgi_application",
                    ready_path="/a",
                    extra=["--lifespan", "off"],  # Django's ASGIHandler refuses lifespan
                )
            )
        order = [(kind, variant) for variant in DJANGO_VARIANTS for kind in kinds]
        for kind, variant in order:
            server = servers[kind, variant]
            status, headers, body = get(server.url + kinds[kind], {"Origin": ORIGIN})
            assert status == 200 and body == b"ok", (kind, variant, status, body)
            check_headers(variant, headers, expected)
            wrk(server.url + kinds[kind], 1, args.connections, cpus=client_cpus, origin=ORIGIN)  # warm-up
        for round_no in range(args.wrk_rounds):
            for kind, variant in order[round_no % len(order) :] + order[: round_no % len(order)]:
                server = servers[kind, variant]
                pids = server.worker_pids() if kind == "gunicorn" else [server.pid]
                before = sum(cpu_seconds(p) for p in pids)
                result = wrk(
                    server.url + kinds[kind], args.seconds, args.connections, cpus=client_cpus, origin=ORIGIN
                )
                cpu = sum(cpu_seconds(p) for p in pids) - before
                result["cpu_us_per_request"] = cpu / max(1, result["requests"]) * 1e6
                runs[kind][variant].append(result)
            print(
                f"django round {round_no + 1}/{args.wrk_rounds} "
                + " ".join(
                    f"{k}:{v} {runs[k][v][-1]['rps'] / runs[k]['floor'][-1]['rps']:.3f}"
                    for k in kinds
                    for v in DJANGO_VARIANTS
                ),
                flush=True,
            )
    return runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="WSGIHandler: per variant and round")
    parser.add_argument("--rounds", type=int, default=12, help="WSGIHandler rounds")
    # Many short rounds: the two halves of a pair are timed milliseconds apart, so the
    # machine's slow spells hit both (docs/benchmarks.md, "Django").
    parser.add_argument("--calls", type=int, default=250, help="middleware layer: per variant and round")
    parser.add_argument("--layer-rounds", type=int, default=800)
    parser.add_argument("--breakdown-calls", type=int, default=100_000, help="timeit calls per step")
    parser.add_argument("--wrk-rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--no-servers", dest="servers", action="store_false", help="in process only")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_app")
    with redis_server() as redis:
        expected = seed(redis.url)
        runs = throughput(args, redis.url, expected) if args.servers else {}
        inproc = in_process(args, redis.url, expected)
    text = report(args, inproc, runs)
    save("django", {"args": vars(args), "in_process_us": inproc, "throughput": runs}, text)
    return {"in_process_us": inproc, "throughput": runs}


def report(args: argparse.Namespace, inproc: dict[str, Any], runs: dict[str, Any]) -> str:
    rows = []
    verdicts = []
    for kind, per in inproc.items():
        if kind == "breakdown":
            continue
        for variant in per:
            vs_bare = [x - b for x, b in zip(per[variant], per["bare"], strict=True)]
            vs_floor = [x - f for x, f in zip(per[variant], per["floor"], strict=True)]
            rows.append(
                [
                    kind,
                    variant,
                    median(per[variant]),
                    median(vs_bare),
                    median(vs_floor),
                    "{:+.2f} to {:+.2f}".format(*quartiles(vs_floor)),
                    # timeit's reasoning: slower rounds are the machine's noise, not the code.
                    min(per[variant]) - min(per["floor"]),
                ]
            )
            if variant == "ours":
                verdicts.append(
                    f"- {kind}: ours {median(vs_floor):+.2f} µs vs the floor (median of rounds; "
                    f"fastest rounds {min(per[variant]) - min(per['floor']):+.2f} µs), "
                    f"{'met' if median(vs_floor) <= 1.0 else 'MISSED'}"
                )
            if variant == AGAIN:
                aa = [x - o for x, o in zip(per[AGAIN], per["ours"], strict=True)]
                verdicts.append(
                    f"  - the instrument's noise there: a second instance of ours "
                    f"{median(aa):+.2f} µs vs ours (median of rounds; middle half "
                    "{:+.2f} to {:+.2f})".format(*quartiles(aa))
                )
    text = table(
        "Django in process: µs per request, rotated rounds (the layer alone: "
        f"{args.layer_rounds} rounds of {args.calls:,} calls; WSGIHandler: {args.rounds} rounds of "
        f"{args.requests:,} requests)",
        [
            "what is called",
            "variant",
            "µs / request (median)",
            "µs added vs bare (median of rounds)",
            "µs vs floor (median of rounds)",
            "µs vs floor (middle half of rounds)",
            "µs vs floor (fastest rounds)",
        ],
        rows,
    )
    text += "\nTarget, ours within 1 µs of the floor in process:\n\n" + "\n".join(verdicts) + "\n\n"
    text += table(
        "Where ours' µs go: each step of VersionMiddleware.__call__ (sync) alone, "
        "µs per call (timeit, best of 5)",
        ["step", "µs"],
        [[name, us] for name, us in inproc["breakdown"]],
    )
    text += "\n"
    if not runs:
        return text
    rows = []
    for kind, per in runs.items():
        for variant in DJANGO_VARIANTS:
            r = per[variant]
            to_floor = [x["rps"] / f["rps"] for x, f in zip(r, per["floor"], strict=True)]
            to_bare = [x["rps"] / b["rps"] for x, b in zip(r, per["bare"], strict=True)]
            rows.append(
                [
                    kind,
                    variant,
                    median([x["rps"] for x in r]),
                    median(to_bare),
                    median(to_floor),
                    "{:.3f}-{:.3f}".format(*quartiles(to_floor)),
                    median([x["cpu_us_per_request"] for x in r]),
                    median([x["p50_ms"] for x in r]),
                    median([x["p99_ms"] for x in r]),
                    int(sum(x["errors"] for x in r)),
                ]
            )
    text += table(
        f"Django throughput: gunicorn (1 sync worker, WSGI, GET /) and uvicorn (ASGI, GET /a), "
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, {args.wrk_rounds} rotated rounds",
        [
            "server",
            "variant",
            "req/s (median)",
            "× bare (median of rounds)",
            "× floor (median of rounds)",
            "× floor (middle half of rounds)",
            "server CPU µs / request",
            "p50 ms",
            "p99 ms",
            "errors",
        ],
        rows,
    )
    return text


def quartiles(values: list[float]) -> tuple[float, float]:
    import statistics

    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


if __name__ == "__main__":
    main()
