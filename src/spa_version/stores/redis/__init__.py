"""The Redis store (needs ``spa-version[redis]``): one server, Sentinel or Cluster, over TCP or TLS.

`RedisStore` (`store`) is the store; `fleet` keeps the fleet's heartbeat records beside
its keys. docs/redis.md describes the URLs, the keys and the ACLs.
"""

from __future__ import annotations

from .store import (
    REDIS_FAILURES,
    RedisStore,
    check_query,
    key_prefix,
    mask_url,
    redis_errors,
    translate_error,
)

__all__ = [
    "REDIS_FAILURES",
    "RedisStore",
    "check_query",
    "key_prefix",
    "mask_url",
    "redis_errors",
    "translate_error",
]
