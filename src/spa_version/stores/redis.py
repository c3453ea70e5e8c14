"""``redis://`` and ``rediss://``: the production store, shared by every host.

Keys and the channel are hash-tagged per app (``spa-version:{APP}:...``), so one
Redis can hold many apps and a Redis Cluster keeps all of an app's keys in one slot.

- ``spa-version:{APP}:epoch``   the epoch counter
- ``spa-version:{APP}:history`` a list of release records (JSON), newest first
- ``spa-version:{APP}:bump``    the pub/sub channel; each message is the new record

The current release is ``LINDEX history 0``. A bump is one Lua script (increment,
push, trim, publish), so no reader ever sees half of one (shared/NOTES.md).

TLS and the ACL user come from the URL (``rediss://user:pass@host:6380/0``), through
redis-py's own ``from_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from ..release import InvalidRelease, Release
from .base import HISTORY_LIMIT, BumpResult, MinCompatible, OnRelease, Store, StoreError, StoreUnavailable

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the redis store needs the redis package: pip install 'spa-version[redis]'") from exc

logger = logging.getLogger("spa_version")

# KEYS: epoch, history. ARGV: record JSON without epoch/min_compatible, min
# ('' | 'current' | digits), history length, channel.
# Returns {epoch, receivers, record} or an error reply for a bad min_compatible.
_BUMP_SCRIPT = """
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
local min = ARGV[2]
if min == '' then
  min = 'null'
elseif min == 'current' then
  min = tostring(epoch)
elseif tonumber(min) > epoch then
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

#: Ping the pub/sub connection this often while idle, and give up on it when no
#: reply came within `PING_TIMEOUT`: a half-open link otherwise looks like silence.
PING_INTERVAL = 5.0
PING_TIMEOUT = 5.0


def mask_url(url: str) -> str:
    """*url* with any password replaced by ``***``, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def translate_error(exc: Exception, where: str) -> Exception:
    """Turn a redis-py error into one of ours, with a message an operator can act on."""
    if isinstance(exc, redis_errors.NoPermissionError):
        return StoreError(f"{where}: permission denied by Redis ACL: {exc}")
    if isinstance(exc, redis_errors.AuthenticationError):
        return StoreError(f"{where}: authentication failed: {exc}")
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)):
        return StoreUnavailable(f"{where}: cannot reach Redis: {exc}")
    if isinstance(exc, redis_errors.ResponseError) and "SPAVERSION" in str(exc):
        return InvalidRelease(str(exc).split("SPAVERSION ", 1)[1])
    return StoreError(f"{where}: {type(exc).__name__}: {exc}")


class RedisStore(Store):
    """Releases in Redis, with pub/sub pushing each bump to every listener."""

    def __init__(self, url: str, *, app: str, client: Any | None = None, **options: Any) -> None:
        self.app = app
        self.display_url = mask_url(url)
        prefix = f"spa-version:{{{app}}}"
        self.epoch_key = f"{prefix}:epoch"
        self.history_key = f"{prefix}:history"
        self.channel = f"{prefix}:bump"
        if client is None:
            options.setdefault("socket_timeout", 5.0)
            options.setdefault("socket_connect_timeout", 5.0)
            client = aioredis.Redis.from_url(url, **options)
        self.client = client

    async def _call(self, where: str, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)
        except redis_errors.RedisError as exc:
            raise translate_error(exc, where) from None
        except OSError as exc:
            raise translate_error(exc, where) from None

    async def get(self) -> Release | None:
        raw = await self._call("get", "LINDEX", self.history_key, 0)
        return None if raw is None else Release.from_json(raw)

    async def history(self, limit: int = HISTORY_LIMIT) -> list[Release]:
        raws = await self._call("history", "LRANGE", self.history_key, 0, limit - 1)
        releases = []
        for raw in raws:
            try:
                releases.append(Release.from_json(raw))
            except InvalidRelease as exc:
                logger.warning("spa-version: skipping a bad history record in Redis: %s", exc)
        return releases

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible) -> BumpResult:
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
        )
        _epoch, receivers, record = result
        return BumpResult(Release.from_json(record), int(receivers))

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        pubsub = self.client.pubsub()
        try:
            try:
                await pubsub.subscribe(self.channel)
            except (redis_errors.RedisError, OSError) as exc:
                raise translate_error(exc, "subscribe") from None
            # Pub/sub is at-most-once: whatever was published while we were away is
            # lost, so re-read the record after every (re)subscribe (shared/NOTES.md).
            await self._resync(on_release)
            loop = asyncio.get_running_loop()
            next_resync = loop.time() + resync_interval
            last_heard = time.monotonic()
            ping_sent: float | None = None
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if message is not None:
                        last_heard = now
                        ping_sent = None
                        if message["type"] == "message":
                            self._deliver(message["data"], on_release)
                    elif ping_sent is not None and now - ping_sent > PING_TIMEOUT:
                        raise StoreUnavailable(
                            f"pub/sub link to {self.display_url} went silent "
                            f"(no PING reply in {PING_TIMEOUT:.0f} s)"
                        )
                    elif ping_sent is None and now - last_heard > PING_INTERVAL:
                        await pubsub.ping()
                        ping_sent = now
                except (redis_errors.RedisError, OSError) as exc:
                    raise translate_error(exc, "listen") from None
                if loop.time() >= next_resync:
                    next_resync = loop.time() + resync_interval
                    await self._resync(on_release)
        finally:
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await pubsub.aclose()

    async def _resync(self, on_release: OnRelease) -> None:
        try:
            current = await self.get()
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
