"""The fleet records of the Redis store (`spa_version.stores.redis.store`).

Keys, for app APP::

    spa-version:{APP}:proc:<host>:<pid>   the record (SET ... EX ttl)
    spa-version:{APP}:fleet               a set of the <host>:<pid> names, so a reader
                                          needs no SCAN; expired names are pruned on read

Both are hash-tagged like the rest of the app's keys (docs/protocol.md), so a Redis
Cluster keeps them in one slot; docs/redis.md gives the ACL that lets a web process
write them. Needs redis-py, like the store itself.
"""

from __future__ import annotations

from typing import Any

from ..base import Fleet
from .errors import REDIS_FAILURES, translate_error

__all__ = ["RedisFleet"]


class RedisFleet(Fleet):
    """Records as TTL'd keys plus an index set (see the module docstring).

    *client* is the store's redis-py client (shared, not closed here), *prefix* the
    start of the app's keys (`spa_version.stores.redis.store.key_prefix`).
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.index_key = f"{prefix}:fleet"
        self.prefix = f"{prefix}:proc:"

    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        name = f"{host}:{pid}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + name, payload, ex=max(1, round(ttl)))
            pipe.sadd(self.index_key, name)
            await pipe.execute()

    async def remove(self, host: str, pid: int) -> None:
        name = f"{host}:{pid}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.prefix + name)
            pipe.srem(self.index_key, name)
            await pipe.execute()

    async def read(self) -> list[tuple[str, str | bytes]]:
        client = self.client
        try:
            members = await client.smembers(self.index_key)
            # Members stay bytes for the keys (anyone with the web ACL can add one, in any
            # bytes); the name reported is their text, undecodable bytes escaped.
            names = sorted(n if isinstance(n, bytes) else n.encode() for n in members)
            prefix = self.prefix.encode()
            raws = await client.mget([prefix + n for n in names]) if names else []
            gone = [n for n, raw in zip(names, raws, strict=True) if raw is None]
            if gone:
                await client.srem(self.index_key, *gone)
        except REDIS_FAILURES as exc:
            raise translate_error(exc, "status") from None
        return [
            (n.decode("utf-8", "backslashreplace"), raw)
            for n, raw in zip(names, raws, strict=True)
            if raw is not None
        ]
