"""Stores, chosen by URL. See `open_store`."""

from __future__ import annotations

from ..release import validate_app
from .base import BumpResult, Fleet, MinCompatible, Store, StoreError, StoreUnavailable
from .urls import REDIS_SCHEMES, SCHEMES, clip, scheme_list, split_scheme

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
    "open_store",
    "clip",
    "resolve_url",
    "scheme_list",
    "validate_url",
]

#: What a redis:// URL needs where redis-py is missing (spa_version.django.checks looks for it).
REDIS_MISSING = "the redis store needs the redis package: pip install 'spa-version[redis]'"

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


def validate_url(url: str) -> str:
    """Check a whole store URL without any I/O and return its scheme (lower-cased).

    The one rule (`spa_version.options` validates with it, `open_store` opens with it):
    a scheme from `SCHEMES`, a directory for ``file://``, and for Redis the form of
    docs/redis.md (ports, database, Sentinel service, Cluster nodes) and query options
    that redis-py knows. Raises ``ValueError`` saying what is wrong, or ``ImportError``
    (`REDIS_MISSING`) for a Redis URL where redis-py is not installed.
    """
    if not isinstance(url, str):
        raise ValueError(f"a store URL must be a string, got {clip(url)}")
    scheme, rest = split_scheme(url)
    if scheme == "file" and not rest:
        raise ValueError("file:// needs a directory, e.g. file://.spa-version or file:///var/lib/spa-version")
    if scheme in REDIS_SCHEMES:
        from .urls import parse_redis_url

        parse_redis_url(url)  # the form, without redis-py
        try:
            from .redis import check_query
        except ImportError:
            raise ImportError(REDIS_MISSING) from None
        check_query(url)
    return scheme


def open_store(url: str | None = None, *, app: str | None = None) -> Store:
    """Open the store for *url* and *app* (see `resolve_url` for the defaults).

    - ``redis://`` / ``rediss://``: Redis (needs ``spa-version[redis]``); also
      ``redis+sentinel://host:26379/SERVICE`` and ``redis+cluster://host:7000,host:7001``
      (and their ``rediss+`` TLS forms). docs/redis.md lists every option.
    - ``file://DIR``: one JSON file per app under DIR (the embedded default)
    - ``memory://[NAME]``: this process only

    Raises ``ValueError`` for a bad URL (`validate_url`); opening does no I/O.
    """
    url, app = resolve_url(url, app)
    scheme = validate_url(url)
    rest = url.partition("://")[2]
    if scheme in REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore(url, app=app)
    if scheme == "file":
        from urllib.parse import unquote

        from .file import FileStore

        return FileStore(unquote(rest), app=app)
    from .memory import MemoryStore  # validate_url allows nothing else

    return MemoryStore(rest, app=app)
