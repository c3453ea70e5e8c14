"""redis-py clients for a Redis store URL: one server, Sentinel or Cluster, over TCP or TLS.

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
authentication. Which names redis-py takes is read from its connection classes' signatures
(`inspect.signature`), so a name it would refuse on the first connect is refused up front.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..urls import REDIS_MISSING, RedisQuery, RedisUrl, clip, unsplit

try:
    import redis.asyncio as aioredis
    import redis.asyncio.connection as redis_connection
    from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(REDIS_MISSING) from exc

__all__ = ["build_client", "mask_url", "split_query"]

# Our own URL query options, removed before redis-py sees the URL (it would pass
# unknown names on to the connection class, which refuses them).
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


def split_query(url: RedisUrl) -> RedisQuery:
    """The query options of *url*, split once into ours and redis-py's (`RedisQuery`);
    ValueError for a name redis-py would refuse or a value it cannot parse."""
    tls = url.scheme.startswith("rediss")
    own: dict[str, float] = {}
    kwargs: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    known = _query_names(tls)
    for name, value in parse_qsl(url.parts.query, keep_blank_values=True):
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
    return RedisQuery(own, kwargs, urlencode(kept))


def build_client(url: RedisUrl, query: RedisQuery, options: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """(the redis-py client for *url* with its *query* (from `split_query`), an extra
    object to close or None, the Sentinel service and sentinels for messages or None).
    *options* are keyword options for the client, below the URL's. No I/O."""
    scheme, parts = url.scheme, url.parts
    tls = scheme.startswith("rediss")
    defaults = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, **options}
    if scheme in ("redis", "rediss", "unix"):
        # from_url parses the rest of the query itself; the URL's values win.
        # (parse_redis_url checked the port and database redis-py would read from it.)
        return aioredis.Redis.from_url(unsplit(parts._replace(query=query.kept)), **defaults), None, None
    kwargs = {**defaults, **query.client}
    if tls:
        kwargs["ssl"] = True
    if scheme.endswith("+sentinel"):
        from redis.asyncio.sentinel import Sentinel

        if url.db is not None:
            kwargs["db"] = url.db
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith(("socket_", "ssl"))}
        for name in _SENTINEL_AUTH:
            if name in kwargs:
                sentinel_kwargs[name.removeprefix("sentinel_")] = kwargs.pop(name)
        hosts = list(url.hosts)
        # Typed from redis-py 8.2 on; untyped before (docs/redis.md, "Tested versions").
        sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            hosts,
            sentinel_kwargs=sentinel_kwargs,
            username=url.username,
            password=url.password,
            **kwargs,
        )
        service = url.service or ""
        tried = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts)
        described = f"service {clip(service)} (sentinels tried: {tried})"
        return sentinel.master_for(service), sentinel, described
    # The rest of REDIS_SCHEMES: redis+cluster:// and rediss+cluster://.
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(host, port) for host, port in url.hosts]
    client = RedisCluster(startup_nodes=nodes, username=url.username, password=url.password, **kwargs)
    return client, None, None
