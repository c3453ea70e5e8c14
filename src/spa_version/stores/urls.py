"""Store URLs: the schemes `open_store` accepts, their parts, and the parsed value.

`spa_version.stores.parse_url` is the one rule for "is this a store URL": it checks a
URL in full and returns a `StoreUrl`, which `spa_version.options.Options` keeps and the
store opener (`spa_version.stores.open_url`) takes, so a URL is parsed once, fails at
configuration time with a clear message, or works. Nothing here does network I/O, and
nothing here needs redis-py: the Redis URL forms (docs/redis.md, "URLs") are parsed with
the standard library, so a bad Redis URL is named even where redis-py is missing. Its
query options are split by `spa_version.stores.redis.client.split_query` (which knows
redis-py's list of them) into a `RedisQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = [
    "REDIS_MISSING",
    "REDIS_SCHEMES",
    "SCHEMES",
    "RedisQuery",
    "RedisUrl",
    "StoreUrl",
    "clip",
    "parse_redis_url",
    "scheme_list",
    "split_scheme",
    "unsplit",
]

#: The URL schemes of the Redis store (`spa_version.stores.redis`, which needs redis-py):
#: one server over TCP, TLS or a Unix socket, Sentinel and Cluster (docs/redis.md).
REDIS_SCHEMES = frozenset(
    {"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"}
)
#: Every URL scheme `open_store` accepts.
SCHEMES = REDIS_SCHEMES | {"file", "memory"}

#: What a Redis URL needs where redis-py is missing (spa_version.django.checks and the
#: CLI look for it in an `spa_version.options.InvalidOptions`).
REDIS_MISSING = "the redis store needs the redis package: pip install 'spa-version[redis]'"

#: How much of a user's value an error message echoes (`clip`).
ECHO_LIMIT = 40

_PORT_RE = re.compile(r"[0-9]{1,5}")
_DB_RE = re.compile(r"[0-9]{1,9}")


def clip(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` of at most about *limit* characters, for error messages."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def unsplit(parts: SplitResult) -> str:
    """`urllib.parse.urlunsplit`, keeping the ``//`` of an empty authority.

    ``urlunsplit`` writes ``unix:///run/redis.sock`` back as ``unix:/run/redis.sock``
    (it keeps ``//`` only for the schemes it knows to have an authority), and redis-py
    8.2's ``from_url`` accepts only the literal ``unix://`` prefix (RFC 3986 §3: with
    ``//`` the authority is empty and the path follows).
    """
    url = urlunsplit(parts)
    if parts.scheme and not parts.netloc and not url.startswith(f"{parts.scheme}://"):
        url = f"{parts.scheme}://{url[len(parts.scheme) + 1 :]}"
    return url


def scheme_list() -> str:
    """The accepted schemes as an error message lists them: ``file://, memory://, redis://, ...``."""
    order = (
        "redis",
        "rediss",
        "unix",
        "redis+sentinel",
        "rediss+sentinel",
        "redis+cluster",
        "rediss+cluster",
    )
    known = [s for s in order if s in SCHEMES] + sorted(SCHEMES - set(order))
    return ", ".join(f"{scheme}://" for scheme in known)


def split_scheme(url: str) -> tuple[str, str]:
    """``(scheme lower-cased, rest)`` of a store URL; ValueError when it has no known scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {clip(url)} has no scheme (use one of {scheme_list()})")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store scheme {clip(scheme)} in the store URL: use one of {scheme_list()}")
    return scheme, rest


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A Redis store URL taken apart (docs/redis.md, "URLs"); passwords stay in here."""

    scheme: str
    parts: SplitResult = field(repr=False)
    username: str | None
    password: str | None = field(repr=False)
    #: ``(host, port)`` of each sentinel or cluster node; the one server for redis://.
    hosts: tuple[tuple[str, int], ...]
    #: The database number from the path (None: not given).
    db: int | None
    #: The Sentinel service name (redis+sentinel:// only).
    service: str | None


@dataclass(frozen=True, slots=True)
class RedisQuery:
    """The query options of a Redis store URL, split once
    (`spa_version.stores.redis.client.split_query`; docs/redis.md, "URLs")."""

    #: Ours, in seconds: ``ping_interval`` and ``ping_timeout`` (the pub/sub health check).
    own: Mapping[str, float]
    #: redis-py's connection options, converted by its own URL parsers (``socket_timeout=2``
    #: is 2.0); they may hold a password, so they are left out of repr.
    client: Mapping[str, Any] = field(repr=False)
    #: The query without ours, as redis-py's ``from_url`` reads it.
    kept: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A store URL checked in full and taken apart (`spa_version.stores.parse_url`).

    `spa_version.options.Options` keeps one and the store opener takes it, so a URL is
    parsed once. No I/O went into it.
    """

    #: The scheme, lower-cased: one of `SCHEMES`.
    scheme: str
    #: The URL as given. It may hold a password, so it is left out of repr.
    text: str = field(repr=False)
    #: ``file://``: the directory, percent-decoded; ``memory://``: the name; Redis: "".
    location: str = ""
    #: A Redis URL's parts and its query options (None for the other schemes).
    redis: RedisUrl | None = None
    query: RedisQuery | None = None


def _port(text: str, item: str) -> int:
    if not _PORT_RE.fullmatch(text) or int(text) > 65535:
        raise ValueError(f"the port in {clip(item)} of the store URL must be a whole number 0-65535")
    return int(text)


def _split_hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """``user:pass@h1:p1,h2:p2`` -> (user, password, [(h1, p1), (h2, p2)])."""
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) or None
    hosts = []
    for raw in netloc.split(","):
        item = raw.strip()
        if item.startswith("["):  # an IPv6 literal (RFC 3986 §3.2.2)
            host, bracket, after = item[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise ValueError(f"invalid host {clip(item)} in the store URL")
            port = after[1:] if after else ""
        else:
            host, colon, port = item.rpartition(":")
            if not colon:
                host, port = item, ""
        if not host:
            raise ValueError(
                f"a host is missing in the store URL (at {clip(item)}): use HOST:PORT[,HOST:PORT...]"
            )
        hosts.append((host, _port(port, item) if port else default_port))
    return username, password, hosts


def _db(text: str) -> int:
    if not _DB_RE.fullmatch(text):
        raise ValueError(f"the Redis database in the store URL must be a whole number, got {clip(text)}")
    return int(text)


def parse_redis_url(url: str) -> RedisUrl:
    """Take a Redis store URL apart, checking its form; ValueError (with the password
    never echoed) when it is not one of docs/redis.md's forms.

    Checks the ports (whole numbers 0-65535), the database (a whole number), the
    Sentinel service name and the Cluster node list. The query options are checked by
    `spa_version.stores.redis.client.split_query`, which needs redis-py's list of them.
    """
    scheme, _ = split_scheme(url)
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"not a Redis URL: scheme {scheme}://")
    parts = urlsplit(url)
    path = unquote(parts.path)
    if scheme == "unix":
        if not path:
            raise ValueError("a unix:// store URL names the socket: unix:///path/to/redis.sock[?db=N]")
        return RedisUrl(scheme, parts, parts.username, parts.password, (), None, None)
    if scheme in ("redis", "rediss"):
        if "," in parts.netloc:
            raise ValueError(
                f"{scheme}:// names one server; use redis+sentinel:// or redis+cluster:// for several"
            )
        username, password, hosts = _split_hosts(parts.netloc, 6379) if parts.netloc else (None, None, [])
        name = path.strip("/")
        return RedisUrl(scheme, parts, username, password, tuple(hosts), _db(name) if name else None, None)
    if scheme.endswith("+sentinel"):
        username, password, hosts = _split_hosts(parts.netloc, 26379)
        segments = [p for p in parts.path.split("/") if p]
        if not segments or len(segments) > 2:
            raise ValueError(
                "a redis+sentinel:// URL names the service: redis+sentinel://HOST:26379[,HOST:26379...]/SERVICE[/DB]"
            )
        db = _db(segments[1]) if len(segments) == 2 else None
        return RedisUrl(scheme, parts, username, password, tuple(hosts), db, unquote(segments[0]))
    # The rest of REDIS_SCHEMES: redis+cluster:// and rediss+cluster://.
    username, password, hosts = _split_hosts(parts.netloc, 6379)
    if path.strip("/") not in ("", "0"):
        raise ValueError("Redis Cluster has only database 0: leave the path out of redis+cluster:// URLs")
    return RedisUrl(scheme, parts, username, password, tuple(hosts), None, None)
