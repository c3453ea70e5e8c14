"""Redis as the production store: one server, Sentinel or Cluster, over TCP or TLS.

Keys and the channel are hash-tagged per app (``spa-version:{APP}:...``, `key_prefix`),
so one Redis can hold many apps and a Redis Cluster keeps all of an app's keys in one slot.

- ``spa-version:{APP}:epoch``   the epoch counter
- ``spa-version:{APP}:history`` a list of release records (JSON), newest first
- ``spa-version:{APP}:bump``    the pub/sub channel; each message is the new record

The fleet's heartbeat records live beside them (`spa_version.stores.redis.fleet`).

The current release is ``LINDEX history 0``. A bump is one Lua script
(`spa_version.stores.redis.script`), so no reader ever sees half of one.

The URL forms and the clients they build are in `spa_version.stores.redis.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable
from typing import Any, NoReturn, TypeVar

from ...release import InvalidRelease, Release
from ..base import HISTORY_LIMIT, BumpResult, Fleet, MinCompatible, OnRelease, Store, StoreUnavailable
from ..urls import StoreUrl
from .client import build_client, mask_url
from .errors import REDIS_FAILURES, translate_error
from .fleet import RedisFleet
from .script import BUMP_SCRIPT

# redis-py's own pick of timeout scope: asyncio.timeout on 3.11.3+, else async-timeout
# (a dependency of redis-py on those Pythons).
if sys.version_info >= (3, 11, 3):
    from asyncio import timeout as async_timeout  # type: ignore[attr-defined, unused-ignore]
else:  # pragma: no cover - older Pythons
    from async_timeout import timeout as async_timeout  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = ["PING_INTERVAL", "PING_TIMEOUT", "RedisStore", "key_prefix"]

logger = logging.getLogger("spa_version")

_T = TypeVar("_T")


def key_prefix(app: str) -> str:
    """``spa-version:{APP}``: the start of every key and channel of *app* (docs/redis.md).

    The braces are a Redis Cluster hash tag: only *app* is hashed, so all of an app's
    keys land in one slot (Redis Cluster specification, "Hash tags").
    """
    return f"spa-version:{{{app}}}"


#: Ping the pub/sub connection after this long without traffic, and give up on it when
#: no reply came within `PING_TIMEOUT`: a half-open link otherwise looks like silence
#: (redis-py "health_check_interval" docs). Both can be set per store (``?ping_interval=&ping_timeout=``).
PING_INTERVAL = 5.0
PING_TIMEOUT = 5.0


class _ReconnectFlag:
    """Set when redis-py transparently reconnects (and re-subscribes) the pub/sub connection.

    redis-py re-subscribes by itself inside ``get_message`` after a dropped connection
    (its retry policy), so our loop would never hear of it, and a bump published in the
    gap would wait for the next periodic resync. The connection's connect callbacks run
    after its re-subscribe, so re-reading the record when this is set closes the gap.
    """

    def __init__(self) -> None:
        self.set = False

    def mark(self, connection: Any) -> None:
        # Connect callbacks are held as weak *methods*, so register a bound method.
        self.set = True


class RedisStore(Store):
    """Releases in Redis, with pub/sub pushing each bump to every listener.

    *url* is a Redis store URL parsed by `spa_version.stores.parse_url` (any of the forms
    of `spa_version.stores.redis.client`), opened as it is: nothing is parsed again.
    Extra keyword *options* go to the redis-py client; *ping_interval* / *ping_timeout*
    override the pub/sub health check (else the URL's, else 5 s each).
    """

    def __init__(
        self,
        url: StoreUrl,
        *,
        app: str,
        client: Any | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        **options: Any,
    ) -> None:
        if url.redis is None or url.query is None:
            raise ValueError(f"not a Redis store URL: {url.scheme}://")
        self.app = app
        self.display_url = mask_url(url.text)
        prefix = key_prefix(app)
        self.epoch_key = f"{prefix}:epoch"
        self.history_key = f"{prefix}:history"
        self.channel = f"{prefix}:bump"
        own = url.query.own
        self._extra: Any = None
        #: A Sentinel store's service and sentinels, named in its errors (`translate_error`).
        self.sentinels: str | None = None
        if client is None:
            client, self._extra, self.sentinels = build_client(url.redis, url.query, options)
        self.client = client
        self.ping_interval = ping_interval or own.get("ping_interval", PING_INTERVAL)
        self.ping_timeout = ping_timeout or own.get("ping_timeout", PING_TIMEOUT)

    @property
    def socket_timeout(self) -> float | None:
        """The client's ``socket_timeout`` in seconds (None: it waits for ever)."""
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None:
            value = pool.connection_kwargs.get("socket_timeout")
        else:  # RedisCluster keeps its node options elsewhere
            value = getattr(self.client, "connection_kwargs", {}).get("socket_timeout")
        return None if value is None else float(value)

    def fleet(self) -> Fleet:
        """The fleet's heartbeat records, beside the app's keys (`spa_version.stores.redis.fleet`)."""
        return RedisFleet(self.client, key_prefix(self.app))

    async def _call(self, where: str, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)
        except REDIS_FAILURES as exc:
            raise translate_error(exc, where, self.socket_timeout, self.sentinels) from None

    async def get(self) -> Release | None:
        raw = await self._call(f"get {self.history_key}", "LINDEX", self.history_key, 0)
        return None if raw is None else Release.from_json(raw)

    async def history(self, limit: int = HISTORY_LIMIT) -> list[Release]:
        raws = await self._call(f"history {self.history_key}", "LRANGE", self.history_key, 0, limit - 1)
        releases = []
        for raw in raws:
            try:
                releases.append(Release.from_json(raw))
            except InvalidRelease as exc:
                logger.warning("spa-version: skipping a bad history record in Redis: %s", exc)
        return releases

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible, floor: int) -> BumpResult:
        tail = json.dumps(fields, separators=(",", ":"))
        min_arg = "" if min_compatible is None else str(min_compatible)
        result = await self._call(
            "bump",
            "EVAL",
            BUMP_SCRIPT,
            2,
            self.epoch_key,
            self.history_key,
            tail,
            min_arg,
            HISTORY_LIMIT,
            self.channel,
            floor,
        )
        _epoch, receivers, record = result
        return BumpResult(Release.from_json(record), int(receivers))

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        initialize = getattr(self.client, "initialize", None)
        if initialize is not None:
            # RedisCluster maps slots lazily on its first command, but the asyncio
            # ClusterPubSub (redis-py 8) looks up the channel's slot without doing so:
            # map them first. (Plain Redis' initialize() does nothing here.)
            try:
                await self._bounded(initialize(), "cluster slots")
            except REDIS_FAILURES as exc:
                raise translate_error(exc, "cluster slots") from None
        pubsub = self.client.pubsub()
        reconnected = _ReconnectFlag()
        connection = None
        try:
            try:
                await self._bounded(pubsub.subscribe(self.channel), "subscribe")
            except REDIS_FAILURES as exc:
                raise translate_error(exc, f"subscribe {self.channel}", sentinels=self.sentinels) from None
            connection = pubsub.connection
            if connection is not None:
                connection.register_connect_callback(reconnected.mark)
            # Pub/sub is at-most-once: whatever was published while we were away is
            # lost, so re-read the record after every (re)subscribe (Redis docs, "Pub/Sub").
            await self._resync(on_release)
            loop = asyncio.get_running_loop()
            next_resync = loop.time() + resync_interval
            last_heard = time.monotonic()
            ping_sent: float | None = None
            while True:
                try:
                    poll = min(1.0, self.ping_interval)
                    message = await self._bounded(pubsub.get_message(timeout=poll), "listen", poll)
                    now = time.monotonic()
                    if message is not None:
                        last_heard = now
                        ping_sent = None
                        if message["type"] == "message":
                            self._deliver(message["data"], on_release)
                    elif ping_sent is not None and now - ping_sent > self.ping_timeout:
                        raise StoreUnavailable(
                            f"pub/sub link to {self.display_url} went silent "
                            f"(no PING reply in {self.ping_timeout:g} s)"
                        )
                    elif ping_sent is None and now - last_heard > self.ping_interval:
                        await pubsub.ping()
                        ping_sent = now
                except REDIS_FAILURES as exc:
                    raise translate_error(
                        exc, f"listen on {self.channel}", sentinels=self.sentinels
                    ) from None
                if reconnected.set:
                    reconnected.set = False
                    logger.info("spa-version: pub/sub reconnected to %s; re-reading", self.display_url)
                    next_resync = loop.time()
                if loop.time() >= next_resync:
                    next_resync = loop.time() + resync_interval
                    await self._resync(on_release)
        except GeneratorExit:
            # Closed by the garbage collector, not cancelled: the event loop is gone, so
            # await nothing (the connection goes with the process).
            raise
        except BaseException:
            with contextlib.suppress(*REDIS_FAILURES):
                await pubsub.aclose()
            raise
        finally:
            if connection is not None:
                connection.deregister_connect_callback(reconnected.mark)

    async def _bounded(self, step: Awaitable[_T], where: str, extra: float = 0.0) -> _T:
        """Await one listener step for at most ``ping_timeout`` (plus *extra*) seconds.

        redis-py retries a failed command itself (10 times by default), so through a
        black hole one read could stall for minutes. The listener has its own backoff,
        so each of its steps is bounded by the health-check timeout instead: a read that
        does not answer in time is the same silence as a missing PONG.
        """
        # A timeout scope in this task, not asyncio.wait_for: wait_for runs the step in
        # a task of its own, and a cancelled redis-py pub/sub read there could swallow
        # the cancellation, so shutdown hung (seen with redis-py 8.1 on Python 3.11).
        try:
            async with async_timeout(self.ping_timeout + extra):
                return await step
        except TimeoutError:
            raise StoreUnavailable(
                f"{where}: no answer from {self.display_url} within {self.ping_timeout + extra:g} s"
            ) from None

    async def _resync(self, on_release: OnRelease) -> None:
        try:
            current = await self._bounded(self.get(), "resync")
        except InvalidRelease as exc:
            logger.warning("spa-version: ignoring a bad current record in Redis: %s", exc)
            return
        on_release(current, True)

    @staticmethod
    def _deliver(data: bytes | str, on_release: OnRelease) -> None:
        try:
            release = Release.from_json(data)
        except InvalidRelease as exc:
            logger.warning("spa-version: ignoring a bad bump message: %s", exc)
            return
        on_release(release, False)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._extra is not None:
            await self._extra.aclose()
