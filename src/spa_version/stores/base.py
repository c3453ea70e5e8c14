"""What every store offers, and the errors it raises.

A store holds the release of one app (`Store`) and, where other processes can read it,
the fleet's heartbeat records (`Fleet`, from `Store.fleet`).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

from ..release import (
    DEFAULT_POLICY,
    MAX_EPOCH,
    InvalidRelease,
    Release,
    is_epoch,
    utc_now,
    validate_label,
    validate_note,
    validate_policy,
)

__all__ = [
    "BumpResult",
    "Fleet",
    "MinCompatible",
    "OnRelease",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "HISTORY_LIMIT",
    "clock_epoch",
    "next_epoch",
]

#: How many past releases a store keeps per app.
HISTORY_LIMIT = 50

#: ``min_compatible`` as given to `Store.bump`: an epoch, ``"current"`` (the epoch
#: this bump creates), or None.
MinCompatible = int | Literal["current"] | None

#: Called by `Store.listen` with each release it reads (None: the store is empty),
#: and whether it came from a full re-read of the current record (True) rather than
#: a change notification (False).
OnRelease = Callable[[Release | None, bool], None]


def clock_epoch() -> int:
    """This host's clock as an epoch: Unix time in whole milliseconds (13 digits until 2286)."""
    return time.time_ns() // 1_000_000


def next_epoch(counter: int, floor: int) -> int:
    """The epoch a bump gets: ``max(counter + 1, floor)``, the rule of docs/protocol.md.

    *counter* is the last epoch the store issued (0 when it holds none), *floor* the
    greatest of the clock (`clock_epoch`) and anything the caller knows was served
    (``Store.bump(at_least=...)``). The counter alone would restart at 1 after the store
    lost its data, below what open tabs and workers hold; the clock floor makes every
    later bump exceed them anyway. Raises `StoreError` past `MAX_EPOCH`.
    """
    epoch = max(counter + 1, floor)
    if epoch > MAX_EPOCH:
        raise StoreError(f"the next epoch {epoch} would exceed {MAX_EPOCH} (15 digits); nothing was changed")
    return epoch


class StoreError(Exception):
    """The store refused an operation (for example an ACL error)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached."""


@dataclass(frozen=True, slots=True)
class BumpResult:
    """What a bump made: the new release, and how many listeners were told (if known)."""

    release: Release
    receivers: int | None


class Fleet(abc.ABC):
    """Where a store keeps the fleet's heartbeat records: one JSON record per process.

    Each record is named by the writer's host name and process id, and counts as gone
    *ttl* seconds after it was written (docs/deploy-haproxy.md, "Fleet status";
    `spa_version.deploy.heartbeat` writes them, `spa_version.deploy.fleet` reads them).
    Every method may raise `StoreUnavailable` or `StoreError`.
    """

    @abc.abstractmethod
    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        """Publish this process's record (JSON text), to count as gone after *ttl* seconds."""

    @abc.abstractmethod
    async def remove(self, host: str, pid: int) -> None:
        """Forget this process's record (may raise: callers treat it as best effort)."""

    @abc.abstractmethod
    async def read(self) -> list[tuple[str, str | bytes]]:
        """``(name, raw JSON)`` of each record still alive; prunes the ones that are not."""


class Store(abc.ABC):
    """A place that holds the current release and its history for one app.

    Stores are chosen by URL (see `spa_version.stores.open_store`). Every method may
    raise `StoreUnavailable` or `StoreError`; reads raise `InvalidRelease` when the
    current record is corrupt.
    """

    #: The URL the store was opened with, with any password masked (safe to log).
    display_url: str
    app: str
    #: The clock a bump floors its epoch with (`clock_epoch`); replaceable for tests.
    clock: Callable[[], int] = staticmethod(clock_epoch)

    @abc.abstractmethod
    async def get(self) -> Release | None:
        """The current release, or None if there has been no bump yet."""

    @abc.abstractmethod
    async def history(self, limit: int = HISTORY_LIMIT) -> list[Release]:
        """Past releases, newest first (the current one included). Bad records are skipped."""

    @abc.abstractmethod
    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible, floor: int) -> BumpResult:
        """Atomically: epoch ``next_epoch(counter, floor)``, set current, push history, notify listeners."""

    @abc.abstractmethod
    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        """Follow the current release until cancelled.

        Calls ``on_release(release, True)`` right after (re)connecting and every
        *resync_interval* seconds, and ``on_release(release, False)`` on each change
        notification. Invalid stored values are logged and skipped. Raises on a
        connection failure; the caller (`spa_version.listener.Listener`) backs off and
        calls again.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections. The store must not be used afterwards."""

    def fleet(self) -> Fleet | None:
        """Where this store keeps the fleet's heartbeat records; None when it has none.

        A store that other processes share has one (Redis; a file store, for one host).
        The memory store has none: it lives in one process, nobody else could read them.
        """
        return None

    def sharing_problem(self) -> str | None:
        """Why processes running as another user could not follow this store, in one
        clause, or None when nothing is known to stop them. Only a file store can tell
        (from its modes: docs/deploy-haproxy.md, "File store permissions"); `bump` says
        it when no process follows the store."""
        return None

    @property
    def location(self) -> str:
        """Where the data lives, for an operator to check: `display_url` unless the
        store knows better (a file store names its absolute directory)."""
        return self.display_url

    async def bump(
        self,
        label: str,
        *,
        policy: str = DEFAULT_POLICY,
        min_compatible: MinCompatible = None,
        note: str | None = None,
        at_least: int | None = None,
        cutoff: bool = False,
    ) -> BumpResult:
        """Create the next release. Bad input raises `InvalidRelease`, touching nothing.

        The new epoch is the greatest of the stored counter + 1, this host's clock in
        milliseconds (`clock_epoch`; Redis also takes its own server clock) and
        *at_least*: pass the highest epoch any process was seen serving + 1 (the CLI
        reads it from the fleet), so that a bump after the store lost its data still
        moves every worker and tab forward. docs/protocol.md, "Epochs". *cutoff* makes
        it a security release (docs/protocol.md, "Security fixes").
        """
        validate_label(label)
        validate_policy(policy)
        validate_note(note)
        if (
            min_compatible is not None
            and min_compatible != "current"
            and not (
                isinstance(min_compatible, int)
                and not isinstance(min_compatible, bool)
                and min_compatible >= 1
            )
        ):
            raise InvalidRelease(f"invalid min_compatible {min_compatible!r}: an epoch >= 1 or 'current'")
        if not isinstance(cutoff, bool):
            raise InvalidRelease(f"invalid cutoff {cutoff!r}: must be true or false")
        if at_least is not None and not is_epoch(at_least):
            raise InvalidRelease(f"invalid at_least {at_least!r}: must be an epoch from 1 to {MAX_EPOCH}")
        fields: dict[str, object] = {
            "label": label,
            "policy": policy,
            "created_at": utc_now(),
            "note": note,
        }
        if cutoff:  # the record's field, carried through every store's bump as it is
            fields["cutoff"] = True
        return await self._bump(fields, min_compatible, max(self.clock(), at_least or 0))

    async def rollback(self, to: int | None = None, *, at_least: int | None = None) -> BumpResult:
        """Bump to the label and policy of an earlier release (default: the previous one).

        A rollback is a bump: it gets a new, higher epoch, so every client moves.
        """
        past = await self.history()
        if to is None:
            if len(past) < 2:
                raise InvalidRelease("there is no previous release to roll back to")
            target = past[1]
        else:
            found = [r for r in past if r.epoch == to]
            if not found:
                raise InvalidRelease(f"epoch {to} is not in the stored history")
            target = found[0]
        return await self.bump(
            target.label, policy=target.policy, note=f"rollback to epoch {target.epoch}", at_least=at_least
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_url} app={self.app!r}>"


def check_min_compatible(min_compatible: MinCompatible, epoch: int) -> int | None:
    """Resolve ``min_compatible`` for a bump that creates *epoch*."""
    if min_compatible is None:
        return None
    if min_compatible == "current":
        return epoch
    if min_compatible > epoch:
        raise InvalidRelease(
            f"min_compatible {min_compatible} is newer than the release being made ({epoch})"
        )
    return min_compatible
