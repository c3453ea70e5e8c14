"""redis-py's errors turned into the store's (`spa_version.stores.base`), with messages an
operator can act on: unreachable, timed out, refused by an ACL, a certificate that does
not verify, a corrupt counter (docs/redis.md, "What happens when Redis misbehaves").

Every module of this package that calls Redis catches `REDIS_FAILURES` and raises
`translate_error`'s result. redis-py does not type its errors by cause, so some are told
apart by class name or message text; each such test says which redis-py error it means.
"""

from __future__ import annotations

from ...release import InvalidRelease
from ..base import StoreError, StoreUnavailable
from ..urls import REDIS_MISSING

try:
    import redis.exceptions as redis_errors
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(REDIS_MISSING) from exc

# redis_errors is exported for other modules that talk to the same Redis.
__all__ = ["REDIS_FAILURES", "redis_errors", "translate_error"]

#: What a redis-py call can raise when Redis fails or cannot be reached: its own errors,
#: the Cluster client's (``RedisClusterException`` is no ``RedisError``: "Redis Cluster
#: cannot be connected" on start-up, an uncovered slot), and the socket's.
REDIS_FAILURES: tuple[type[BaseException], ...] = (
    redis_errors.RedisError,
    redis_errors.RedisClusterException,
    OSError,
)


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
