"""Stores, chosen by URL. See `open_store`."""

from __future__ import annotations

from ..release import validate_app
from .base import BumpResult, Fleet, MinCompatible, Store, StoreError, StoreUnavailable

__all__ = [
    "DEFAULT_APP",
    "DEFAULT_URL",
    "REDIS_SCHEMES",
    "SCHEMES",
    "BumpResult",
    "Fleet",
    "MinCompatible",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "resolve_url",
]

#: The URL schemes of the Redis store (`spa_version.stores.redis`, which needs redis-py):
#: one server over TCP, TLS or a Unix socket, Sentinel and Cluster (docs/redis.md).
REDIS_SCHEMES = frozenset(
    {"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"}
)
#: Every URL scheme `open_store` accepts.
SCHEMES = REDIS_SCHEMES | {"file", "memory"}

#: The embedded default: a directory in the working directory, no Redis needed.
DEFAULT_URL = "file://.spa-version"
DEFAULT_APP = "default"


def resolve_url(url: str | None = None, app: str | None = None) -> tuple[str, str]:
    """The store URL and app name: explicit values, else the environment, else defaults.

    Environment: ``SPA_VERSION_URL`` and ``SPA_VERSION_APP`` (`spa_version.options`).
    """
    from ..options import environment

    env = environment()
    url = url or env.get("store") or DEFAULT_URL
    app = validate_app(app or env.get("app_name") or DEFAULT_APP)
    return url, app


def open_store(url: str | None = None, *, app: str | None = None) -> Store:
    """Open the store for *url* and *app* (see `resolve_url` for the defaults).

    - ``redis://`` / ``rediss://``: Redis (needs ``spa-version[redis]``); also
      ``redis+sentinel://host:26379/SERVICE`` and ``redis+cluster://host:7000,host:7001``
      (and their ``rediss+`` TLS forms). docs/redis.md lists every option.
    - ``file://DIR``: one JSON file per app under DIR (the embedded default)
    - ``memory://[NAME]``: this process only

    Raises ``ValueError`` for an unknown scheme.
    """
    url, app = resolve_url(url, app)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {url!r} has no scheme (redis://, rediss://, file://, memory://)")
    scheme = scheme.lower()
    if scheme in REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore(url, app=app)
    if scheme == "file":
        if not rest:
            raise ValueError(
                "file:// needs a directory, e.g. file://.spa-version or file:///var/lib/spa-version"
            )
        from urllib.parse import unquote

        from .file import FileStore

        return FileStore(unquote(rest), app=app)
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(rest, app=app)
    raise ValueError(
        f"unknown store scheme {scheme!r} in {url!r}: use redis://, rediss://, "
        "redis+sentinel://, redis+cluster://, file:// or memory://"
    )
