"""The apps the benchmarks compare, chosen by ``BENCH_VARIANT`` (``uvicorn bench.apps:app``).

- ``bare``: a trivial pure ASGI app (200, ``ok``).
- ``header``: the bare app emitting the same ``x-spa-version`` header itself: the floor
  for any stamping (what uvicorn and the client pay for one more header).
- ``relay``: a pure ASGI middleware that wraps ``send`` and changes nothing: what the
  wrapping alone costs, before any header work.
- ``wrap``: the smallest pure ASGI middleware that stamps: wrap ``send``, append the
  header to ``http.response.start``. The floor for any pure ASGI stamping middleware.
- ``ours``: the same app inside `spa_version.VersionMiddleware` (store from ``BENCH_STORE_URL``).
- ``naive``: what people hand-roll: a pure ASGI middleware doing a Redis read per request.
- ``basehttp``: the same stamping as ours (one precomputed header), as a Starlette
  ``BaseHTTPMiddleware``.
- ``correlation``: asgi-correlation-id's ``CorrelationIdMiddleware``, a popular pure-ASGI peer.
- ``drain``: ours with a declared build (``BENCH_BUILD``), drain grace 0 and window
  ``BENCH_DRAIN_WINDOW``, around an app whose websockets stay idle until closed.

``ours`` also answers ``GET /__bench/switches``: this worker's pid and, per epoch, the
``time.monotonic()`` at which it switched to it (CLOCK_MONOTONIC is system-wide on
Linux, so the propagation benchmark can compare it with the time of the bump).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

VARIANTS = ("bare", "header", "relay", "wrap", "ours", "naive", "basehttp", "correlation")
#: The release the in-memory variants stamp, identical to what ours stamps after a bump.
HEADER_VALUE = b"1; label=bench-1; policy=next-navigation"
APP_NAME = os.environ.get("BENCH_APP", "bench")

SWITCHES: dict[int, float] = {}


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """The trivial app: 200 ``ok``, nothing else (lifespan accepted and ignored)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass  # idle: nothing is ever sent
        return
    if scope["path"] == "/__bench/switches":
        body = json.dumps({"pid": os.getpid(), "switches": SWITCHES}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
        return
    # Fresh dicts per response, as a real app builds them (middleware may mutate them).
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def with_header(scope: Scope, receive: Receive, send: Send) -> None:
    """The bare app, sending the version header itself (no middleware)."""
    if scope["type"] != "http" or scope["path"] != "/":
        await bare(scope, receive, send)
        return
    headers = [(b"content-type", b"text/plain"), (b"x-spa-version", HEADER_VALUE)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


class Relay:
    """Wrap ``send`` and pass every message on unchanged: the cost of the wrapping alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def relayed(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, relayed)


class MinimalStamp:
    """Wrap ``send`` and append the header: the least a pure ASGI stamping middleware does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-spa-version", HEADER_VALUE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, stamped)


def make_ours(store_url: str | None = None, **options: Any) -> ASGIApp:
    from spa_version import VersionMiddleware

    middleware = VersionMiddleware(
        bare, store=store_url or os.environ.get("BENCH_STORE_URL"), app_name=APP_NAME, **options
    )

    def record(old: Any, new: Any) -> None:
        if new.release is not None:
            SWITCHES[new.release.epoch] = time.monotonic()

    middleware.current.add_observer(record)
    return middleware


class NaiveRedisStamp:
    """The hand-rolled approach: read the version from Redis on every request."""

    def __init__(self, app: ASGIApp, url: str) -> None:
        import redis.asyncio as aioredis

        from spa_version.stores.redis import key_prefix

        self.app = app
        self.client = aioredis.Redis.from_url(url)
        self.key = f"{key_prefix(APP_NAME)}:history"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = await self.client.lindex(self.key, 0)
        value = str(json.loads(raw)["epoch"]).encode() if raw else None

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and value is not None:
                message.setdefault("headers", []).append((b"x-spa-version", value))
            await send(message)

        await self.app(scope, receive, stamped)


def make_basehttp() -> ASGIApp:
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import Response

    value = HEADER_VALUE.decode()

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-spa-version"] = value
        return response

    return BaseHTTPMiddleware(bare, dispatch=dispatch)


def make_correlation() -> ASGIApp:
    from asgi_correlation_id import CorrelationIdMiddleware

    return CorrelationIdMiddleware(bare)


def make(variant: str, store_url: str | None = None) -> ASGIApp:
    """The ASGI app for *variant*."""
    if variant == "bare":
        return bare
    if variant == "header":
        return with_header
    if variant == "relay":
        return Relay(bare)
    if variant == "wrap":
        return MinimalStamp(bare)
    if variant == "ours":
        return make_ours(store_url)
    if variant == "naive":
        return NaiveRedisStamp(bare, store_url or os.environ["BENCH_STORE_URL"])
    if variant == "basehttp":
        return make_basehttp()
    if variant == "correlation":
        return make_correlation()
    if variant == "drain":
        window = float(os.environ.get("BENCH_DRAIN_WINDOW", "10"))
        return make_ours(store_url, build=os.environ.get("BENCH_BUILD", "bench-1"), drain_grace=0.0,
                         drain_window=window, drain_on_sigterm=False)  # fmt: skip
    raise ValueError(f"unknown BENCH_VARIANT {variant!r}: one of {', '.join(VARIANTS)}")


app = make(os.environ.get("BENCH_VARIANT", "bare")) if os.environ.get("BENCH_VARIANT") else bare
