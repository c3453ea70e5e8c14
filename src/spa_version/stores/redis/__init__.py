"""The Redis store (needs ``spa-version[redis]``): one server, Sentinel or Cluster, over TCP or TLS.

One module a concern: `client` builds redis-py's client for a URL (and knows which query
options redis-py takes), `errors` turns redis-py's errors into the store's, `script` is
the Lua bump, `store` is `RedisStore` with its listen loop, and `fleet` keeps the fleet's
heartbeat records beside the app's keys (it needs only `errors`). docs/redis.md
describes the URLs, the keys and the ACLs.
"""

from __future__ import annotations

from .client import mask_url, split_query
from .errors import REDIS_FAILURES, redis_errors, translate_error
from .store import RedisStore, key_prefix

__all__ = [
    "REDIS_FAILURES",
    "RedisStore",
    "key_prefix",
    "mask_url",
    "redis_errors",
    "split_query",
    "translate_error",
]
