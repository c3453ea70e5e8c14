"""Stores, chosen by URL: `parse_url` checks one, `open_url` opens what it parsed.

A URL is parsed once: `spa_version.options.Options` keeps the `StoreUrl` that
`parse_url` returns and opens it with `open_url`, which reads no environment. The
public `open_store` does both for a URL given as text.
"""

from __future__ import annotations

from ..defaults import DEFAULT_APP, DEFAULT_URL, environment
from ..release import validate_app
from .base import BumpResult, Fleet, MinCompatible, Store, StoreError, StoreUnavailable
from .urls import (
    REDIS_MISSING,
    REDIS_SCHEMES,
    SCHEMES,
    StoreUrl,
    clip,
    parse_redis_url,
    scheme_list,
    split_scheme,
)

__all__ = [
    "DEFAULT_APP",
    "DEFAULT_URL",
    "REDIS_MISSING",
    "REDIS_SCHEMES",
    "SCHEMES",
    "BumpResult",
    "Fleet",
    "MinCompatible",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreUrl",
    "clip",
    "open_store",
    "open_url",
    "parse_url",
    "scheme_list",
]


def parse_url(url: str) -> StoreUrl:
    """Check a whole store URL without any I/O and take it apart, once.

    The one rule for store URLs: a scheme from `SCHEMES`, a directory for ``file://``,
    and for Redis the form of docs/redis.md (ports, database, Sentinel service, Cluster
    nodes) and query options that redis-py knows. Raises ``ValueError`` saying what is
    wrong, or ``ImportError`` (`REDIS_MISSING`) for a Redis URL where redis-py is not
    installed (its form is checked first, so a bad one is named even then).
    """
    if not isinstance(url, str):
        raise ValueError(f"a store URL must be a string, got {clip(url)}")
    scheme, rest = split_scheme(url)
    if scheme == "file":
        if not rest:
            raise ValueError(
                "file:// needs a directory, e.g. file://.spa-version or file:///var/lib/spa-version"
            )
        from urllib.parse import unquote

        return StoreUrl(scheme, url, unquote(rest))
    if scheme not in REDIS_SCHEMES:  # memory://, the last of SCHEMES
        return StoreUrl(scheme, url, rest)
    parts = parse_redis_url(url)  # the form, without redis-py
    try:
        from .redis import split_query
    except ImportError:
        raise ImportError(REDIS_MISSING) from None
    return StoreUrl(scheme, url, redis=parts, query=split_query(parts))


def open_url(url: StoreUrl, *, app: str) -> Store:
    """Open the store that *url* (from `parse_url`) names, for *app*. Reads no
    environment, parses nothing again and does no I/O; ``ValueError`` for a bad *app*.
    """
    app = validate_app(app)
    if url.scheme in REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore(url, app=app)
    if url.scheme == "file":
        from .file import FileStore

        return FileStore(url.location, app=app)
    from .memory import MemoryStore  # parse_url allows nothing else

    return MemoryStore(url.location, app=app)


def open_store(url: str | None = None, *, app: str | None = None) -> Store:
    """Open the store for *url* and *app*: `parse_url`, then `open_url`.

    - ``redis://`` / ``rediss://``: Redis (needs ``spa-version[redis]``); also
      ``redis+sentinel://host:26379/SERVICE`` and ``redis+cluster://host:7000,host:7001``
      (and their ``rediss+`` TLS forms). docs/redis.md lists every option.
    - ``file://DIR``: one JSON file per app under DIR (the embedded default)
    - ``memory://[NAME]``: this process only

    Left out (None), *url* and *app* are the environment's (``SPA_VERSION_URL``,
    ``SPA_VERSION_APP``: `spa_version.defaults`), else ``file://.spa-version`` and
    ``default``. Raises ``ValueError`` for a bad URL or app; opening does no I/O.
    """
    env = environment() if url is None or app is None else {}
    return open_url(
        parse_url(url or env.get("store") or DEFAULT_URL), app=app or env.get("app_name") or DEFAULT_APP
    )
