"""Redis as the production store: one server, Sentinel or Cluster, over TCP or TLS.

Keys and the channel are hash-tagged per app (``spa-version:{APP}:...``, `key_prefix`),
so one Redis can hold many apps and a Redis Cluster keeps all of an app's keys in one slot.

- ``spa-version:{APP}:epoch``   the epoch counter
- ``spa-version:{APP}:history`` a list of release records (JSON), newest first
- ``spa-version:{APP}:bump``    the pub/sub channel; each message is the new record

The fleet's heartbeat records live beside them (`spa_version.stores.redis.fleet`).

The current release is ``LINDEX history 0``. A bump is one Lua script (increment,
push, trim, publish), so no reader ever sees half of one (Redis docs, "Scripting with
Lua": a script runs atomically).

URLs (docs/redis.md has the full list and the least-privilege ACLs):

- ``redis://[user:pass@]host:6379/0`` and ``rediss://`` (TLS; ``?ssl_ca_certs=/path/ca.pem``),
  through redis-py's own ``Redis.from_url``.
- ``redis+sentinel://[user:pass@]host:26379[,host:26379...]/SERVICE[/DB]``, through
  ``redis.asyncio.sentinel.Sentinel(...).master_for(SERVICE)``, which follows failovers.
- ``redis+cluster://[user:pass@]host:7000[,host:7001...]``, through
  ``redis.asyncio.cluster.RedisCluster``. ``rediss+sentinel://`` and ``rediss+cluster://``
  add TLS.

Query parameters are redis-py's connection options (``socket_timeout=2``, ``client_name=web``,
``ssl_ca_certs=...``), plus ours: ``ping_interval`` and ``ping_timeout`` (seconds) for the
pub/sub health check, and ``sentinel_username`` / ``sentinel_password`` for Sentinel's own
authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from ...release import InvalidRelease, Release
from .. import REDIS_MISSING, Fleet
from ..base import HISTORY_LIMIT, BumpResult, MinCompatible, OnRelease, Store, StoreError, StoreUnavailable
from ..urls import clip, parse_redis_url, unsplit

try:
    import redis.asyncio as aioredis
    import redis.asyncio.connection as redis_connection
    import redis.exceptions as redis_errors
    from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(REDIS_MISSING) from exc

# redis-py's own pick of timeout scope: asyncio.timeout on 3.11.3+, else async-timeout
# (a dependency of redis-py on those Pythons).
if sys.version_info >= (3, 11, 3):
    from asyncio import timeout as async_timeout  # type: ignore[attr-defined, unused-ignore]
else:  # pragma: no cover - older Pythons
    from async_timeout import timeout as async_timeout  # type: ignore[import-not-found, no-redef, unused-ignore]

# redis_errors is exported for other modules that talk to the same Redis (spa_version.stores.redis.fleet).
__all__ = [
    "REDIS_FAILURES",
    "RedisStore",
    "check_query",
    "key_prefix",
    "mask_url",
    "redis_errors",
    "translate_error",
]

#: What a redis-py call can raise when Redis fails or cannot be reached: its own errors,
#: the Cluster client's (``RedisClusterException`` is no ``RedisError``: "Redis Cluster
#: cannot be connected" on start-up, an uncovered slot), and the socket's.
REDIS_FAILURES: tuple[type[BaseException], ...] = (
    redis_errors.RedisError,
    redis_errors.RedisClusterException,
    OSError,
)

logger = logging.getLogger("spa_version")


def key_prefix(app: str) -> str:
    """``spa-version:{APP}``: the start of every key and channel of *app* (docs/redis.md).

    The braces are a Redis Cluster hash tag: only *app* is hashed, so all of an app's
    keys land in one slot (Redis Cluster specification, "Hash tags").
    """
    return f"spa-version:{{{app}}}"


# KEYS: epoch, history. ARGV: record JSON without epoch/min_compatible, min
# ('' | 'current' | digits), history length, channel, floor (digits: the client's clock
# and what it knows was served, `Store.bump`).
# Returns {epoch, receivers, record}, or an error reply (nothing changed) for a bad
# min_compatible, a counter that is not 1-15 digits (written by hand, or a float), or an
# epoch past 15 digits. Lua numbers are doubles, exact below 2^53, so every number is
# checked as text first and written with '%d', never tostring (which gives '1e+14').
# The epoch is max(counter + 1, floor, this server's TIME in ms): docs/protocol.md. TIME
# goes through pcall: an ACL written before the script called it (docs/redis.md lists
# +time now) refuses it, and the bump then does without the server's clock.
# Every write is checked against the ACL before the first one (redis.acl_check_cmd, Redis
# 7.0+): Redis runs a script's commands one by one and keeps what ran when a later one is
# refused, so a refused PUBLISH would otherwise leave a release that no worker was told
# about. Redis 6 has no such check (docs/redis.md).
_BUMP_SCRIPT = """
local max_epoch = 999999999999999
local stored = redis.call('GET', KEYS[1]) or '0'
if not string.match(stored, '^[0-9]+$') or #stored > 15 then
  return redis.error_reply('SPAVERSION-CORRUPT the epoch counter ' .. KEYS[1] .. ' holds ' ..
    string.format('%q', string.sub(stored, 1, 40)) .. ', not an epoch; nothing was changed')
end
if redis.acl_check_cmd then
  for _, cmd in ipairs({{'SET', KEYS[1], '1'}, {'LPUSH', KEYS[2], '{}'}, {'LTRIM', KEYS[2], '0', '0'},
                        {'PUBLISH', ARGV[4], '{}'}}) do
    if not redis.acl_check_cmd(unpack(cmd)) then
      return redis.error_reply('NOPERM this user has no permissions to run the ' .. string.lower(cmd[1]) ..
        ' command on ' .. cmd[2] .. ', which a bump needs; nothing was changed')
    end
  end
end
local server_clock = 0
local now = redis.pcall('TIME')
if type(now) == 'table' and now[2] then
  server_clock = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local epoch = math.max(tonumber(stored) + 1, tonumber(ARGV[5]), server_clock)
if epoch > max_epoch then
  return redis.error_reply('SPAVERSION-CORRUPT the next epoch would exceed 15 digits; nothing was changed')
end
epoch = string.format('%d', epoch)
local min = ARGV[2]
if min == '' then
  min = 'null'
elseif min == 'current' then
  min = epoch
elseif tonumber(min) > tonumber(epoch) then
  return redis.error_reply(
    'SPAVERSION min_compatible ' .. min .. ' is newer than the release being made (' .. epoch .. ')')
end
local record = '{"epoch":' .. epoch .. ',"min_compatible":' .. min .. ',' .. string.sub(ARGV[1], 2)
redis.call('SET', KEYS[1], epoch)
redis.call('LPUSH', KEYS[2], record)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
local receivers = redis.call('PUBLISH', ARGV[4], record)
return {epoch, receivers, record}
"""

#: Ping the pub/sub connection after this long without traffic, and give up on it when
#: no reply came within `PING_TIMEOUT`: a half-open link otherwise looks like silence
#: (redis-py "health_check_interval" docs). Both can be set per store (``?ping_interval=&ping_timeout=``).
PING_INTERVAL = 5.0
PING_TIMEOUT = 5.0

# Our own URL query options, removed before redis-py sees the URL (it would pass
# unknown names on to the connection class, which refuses them).
_T = TypeVar("_T")

_OWN_OPTIONS: dict[str, Callable[[str], float]] = {"ping_interval": float, "ping_timeout": float}
_SENTINEL_AUTH = ("sentinel_username", "sentinel_password")


def mask_url(url: str) -> str:
    """*url* with any password (in the userinfo or the query) replaced by ``***``, for logs."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        userinfo, hosts = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}")
    if "password" in parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, "***" if "password" in k else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(query, safe="*/"))
    return unsplit(parts)


def _is_tls_verify_failure(exc: BaseException) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


# redis-py's lead-in when no startup node answers, dropped for the part that says why.
_CLUSTER_UNREACHABLE = "Redis Cluster cannot be connected. Please provide at least one reachable node: "


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def translate_error(
    exc: BaseException, where: str, timeout: float | None = None, sentinels: str | None = None
) -> Exception:
    """Turn a redis-py error into one of ours, with a message an operator can act on.

    *timeout* is the client's ``socket_timeout`` in seconds, named when Redis was
    reached but did not answer in time (a paused or overloaded server), which calls for
    other action than a server that cannot be reached at all. *sentinels* describes a
    Sentinel store's service and sentinels (``'mymaster' from sentinels h1:26379, ...``),
    named instead of redis-py's message, which holds the repr of every client it tried.
    """
    if isinstance(exc, redis_errors.ConnectionError) and type(exc).__name__ in (
        "MasterNotFoundError",
        "SlaveNotFoundError",
    ):
        service = sentinels or "the service"
        role = "master" if type(exc).__name__ == "MasterNotFoundError" else "replica"
        return StoreUnavailable(f"{where}: no sentinel named a reachable {role} of {service}")
    if isinstance(exc, redis_errors.NoPermissionError) or (
        # A command the bump script calls, refused by the ACL (Redis checks each one).
        isinstance(exc, redis_errors.ResponseError) and "can't run this command" in str(exc)
    ):
        return StoreError(f"{where}: permission denied by Redis ACL: {exc} (docs/redis.md lists the ACLs)")
    if isinstance(exc, redis_errors.AuthenticationError):
        return StoreError(f"{where}: authentication failed: {exc}")
    if _is_tls_verify_failure(exc):
        # Fail closed: nothing is read from a server whose certificate does not verify.
        return StoreError(
            f"{where}: TLS certificate verification failed, refusing to talk to Redis "
            f"(is ssl_ca_certs the CA that signed the server's certificate?): {exc}"
        )
    if isinstance(exc, (redis_errors.TimeoutError, TimeoutError)):
        within = f" within {timeout:g} s" if timeout else " in time"
        return StoreUnavailable(f"{where}: Redis did not answer{within} ({exc or 'timeout'})")
    if isinstance(exc, (redis_errors.ConnectionError, OSError)):
        return StoreUnavailable(f"{where}: cannot reach Redis: {exc}")
    if isinstance(exc, redis_errors.RedisClusterException):
        # Its message is redis-py's own sentence (no reprs): "Redis Cluster cannot be
        # connected. Please provide at least one reachable node: Error 111 ...".
        detail = _first_line(exc).removeprefix(_CLUSTER_UNREACHABLE)
        return StoreUnavailable(f"{where}: cannot reach Redis Cluster (no startup node answered): {detail}")
    if isinstance(exc, redis_errors.ResponseError) and "SPAVERSION-CORRUPT " in str(exc):
        return StoreError(f"{where}: {str(exc).split('SPAVERSION-CORRUPT ', 1)[1]}")
    if isinstance(exc, redis_errors.ResponseError) and "SPAVERSION " in str(exc):
        return InvalidRelease(str(exc).split("SPAVERSION ", 1)[1])
    return StoreError(f"{where}: {type(exc).__name__}: {exc}")


@functools.cache
def _query_names(tls: bool) -> frozenset[str]:
    """The query options a store URL may carry: what redis-py's connection classes take
    as text (their keyword parameters, and the names its URL parser converts), and ours.
    redis-py passes any other name on to the connection, which refuses it on the first
    connect (a TypeError on every request), so they are refused up front instead."""
    classes: list[type] = [
        redis_connection.AbstractConnection,
        redis_connection.Connection,
        redis_connection.UnixDomainSocketConnection,
    ]
    if tls:
        classes.append(redis_connection.SSLConnection)
    names = set(URL_QUERY_ARGUMENT_PARSERS) | set(_OWN_OPTIONS) | set(_SENTINEL_AUTH)
    for cls in classes:
        names |= {
            name
            for name, parameter in inspect.signature(cls).parameters.items()
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        }
    names -= {"self", "host", "port", "path", "parser_class", "encoder_class", "retry", "redis_connect_func"}
    names -= {"himport_registry", "retry_on_error", "socket_keepalive_options", "socket_type"}  # objects
    names -= {n for n in names if n.startswith(("credential", "event_", "maint", "orig_", "driver", "oss_"))}
    if not tls:
        names = {n for n in names if not n.startswith("ssl_")}
    return frozenset(names)


def _split_options(query: str, tls: bool) -> tuple[dict[str, float], dict[str, Any], str]:
    """(our options, redis-py keyword options, the query without ours); ValueError for a
    name redis-py would refuse or a value it cannot parse."""
    own: dict[str, float] = {}
    kwargs: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    known = _query_names(tls)
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in known:
            need_tls = name.startswith("ssl_") and name in _query_names(True)
            raise ValueError(
                f"unknown option {clip(name)} in the store URL"
                + (" (ssl_* options need a rediss:// URL)" if need_tls else " (docs/redis.md lists them)")
            )
        if name in _OWN_OPTIONS:
            try:
                own[name] = _OWN_OPTIONS[name](value)
            except ValueError:
                raise ValueError(f"invalid value for {name!r} in the store URL: {clip(value)}") from None
            if not own[name] > 0 or own[name] == float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {clip(value)}")
            continue
        kept.append((name, value))
        parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
        shown = "***" if "password" in name else clip(value)
        try:
            kwargs[name] = parser(value) if parser else value
        except (TypeError, ValueError):
            raise ValueError(f"invalid value for {name!r} in the store URL: {shown}") from None
    return own, kwargs, urlencode(kept)


def check_query(url: str) -> None:
    """Check the query options of a Redis store URL (`spa_version.stores.validate_url`)."""
    parsed = parse_redis_url(url)
    _split_options(parsed.parts.query, parsed.scheme.startswith("rediss"))


def _build_client(url: str, options: dict[str, Any]) -> tuple[Any, dict[str, float], Any, str | None]:
    """(the redis-py client for *url*, our own options, an extra object to close or None,
    the Sentinel service and sentinels for messages or None). No I/O."""
    parsed = parse_redis_url(url)
    scheme, parts = parsed.scheme, parsed.parts
    tls = scheme.startswith("rediss")
    own, kwargs, query = _split_options(parts.query, tls)
    defaults = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, **options}
    if scheme in ("redis", "rediss", "unix"):
        # from_url parses the rest of the query itself; the URL's values win.
        # (parse_redis_url checked the port and database redis-py would read from it.)
        return aioredis.Redis.from_url(unsplit(parts._replace(query=query)), **defaults), own, None, None
    kwargs = {**defaults, **kwargs}
    if tls:
        kwargs["ssl"] = True
    if scheme.endswith("+sentinel"):
        from redis.asyncio.sentinel import Sentinel

        if parsed.db is not None:
            kwargs["db"] = parsed.db
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith(("socket_", "ssl"))}
        for name in _SENTINEL_AUTH:
            if name in kwargs:
                sentinel_kwargs[name.removeprefix("sentinel_")] = kwargs.pop(name)
        hosts = list(parsed.hosts)
        # Typed from redis-py 8.2 on; untyped before (docs/redis.md, "Tested versions").
        sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            hosts,
            sentinel_kwargs=sentinel_kwargs,
            username=parsed.username,
            password=parsed.password,
            **kwargs,
        )
        service = parsed.service or ""
        tried = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts)
        described = f"service {clip(service)} (sentinels tried: {tried})"
        return sentinel.master_for(service), own, sentinel, described
    # The rest of REDIS_SCHEMES: redis+cluster:// and rediss+cluster://.
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(host, port) for host, port in parsed.hosts]
    client = RedisCluster(startup_nodes=nodes, username=parsed.username, password=parsed.password, **kwargs)
    return client, own, None, None


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

    *url* is any of the forms in this module's docstring. Extra keyword *options* go to
    the redis-py client; *ping_interval* / *ping_timeout* override the pub/sub health
    check (else the URL's, else 5 s each).
    """

    def __init__(
        self,
        url: str,
        *,
        app: str,
        client: Any | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.display_url = mask_url(url)
        prefix = key_prefix(app)
        self.epoch_key = f"{prefix}:epoch"
        self.history_key = f"{prefix}:history"
        self.channel = f"{prefix}:bump"
        own: dict[str, float] = {}
        self._extra: Any = None
        #: A Sentinel store's service and sentinels, named in its errors (`translate_error`).
        self.sentinels: str | None = None
        if client is None:
            client, own, self._extra, self.sentinels = _build_client(url, options)
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
        # Imported here: the fleet builds on this module.
        from .fleet import RedisFleet

        return RedisFleet(self.client, self.app)

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
            _BUMP_SCRIPT,
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
