"""Property-based test of epoch allocation (Hypothesis), against the real memory, file and Redis stores.

The rule (docs/protocol.md, "Epochs"): a bump's epoch is ``max(counter + 1, clock, floor)``
where *counter* is the last epoch the store issued (0 once it lost its data), *clock* the
bumping host's clock in ms (and, on Redis, the server's), and *floor* the ``at_least`` the
CLI passes (the highest epoch the fleet reports serving, + 1).

The model. True time τ advances in whole ms between bumps (0 ms: two bumps in one ms).
Every clock a bump reads is within ±S ms of τ (so two deploy hosts may disagree by 2S,
and the clock a bump reads may go back by up to 2S from one bump to the next). Let

    L(first bump) = S,   L(next) = max(S, L(previous) + 1 - (ms since the previous bump))

be the lead bound: how far epochs may run ahead of true time (S, plus one for every bump
made faster than one per ms, draining one per ms). The properties, for any interleaving
of bumps, rollbacks, resets (the store emptied) and clock readings:

1. Every epoch is exactly ``max(counter + 1, clock, floor)`` (the rule, in every store).
2. Every epoch is at most τ + L at its bump (so the lead bound is an upper bound).
3. After a reset, every epoch exceeds every epoch issued before the reset, provided the
   first bump after it either (a) comes more than S + L ms after the last bump before it
   (L at that last bump; 2S when bumps were at most one per ms), or (b) passes as floor
   the highest epoch issued before + 1 (the fleet floor), whatever its clock reads (even
   far behind). A reset followed by a bump meeting neither ("early") promises nothing.

The simulated τ starts a year ahead of the real clock, so Redis's own TIME (real time,
far behind) never decides an epoch, and the model stays exact on Redis too.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_version.stores import Store, open_store
from spa_version.stores.base import clock_epoch
from tests.support.servers import RedisServer

YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Bump:
    gap: int  # ms of true time since the previous bump
    skew: int  # this host's clock minus true time, clamped to ±S
    floor: bool  # pass the fleet floor (highest epoch issued + 1)
    rollback: bool  # roll back to the previous release instead (a rollback is a bump)


@dataclass(frozen=True)
class Reset:
    mode: str  # "clock", "floor" or "early": how the first bump after it comes (module docstring)
    extra: int  # "clock": ms beyond S + L; "floor": how far behind true time that host's clock is


bumps = st.builds(
    Bump,
    gap=st.one_of(st.just(0), st.just(1), st.integers(0, 5), st.integers(0, 3000)),
    skew=st.integers(-1000, 1000),
    floor=st.booleans(),
    rollback=st.booleans(),
)
resets = st.builds(
    Reset,
    mode=st.sampled_from(["clock", "floor", "early"]),
    extra=st.one_of(st.integers(0, 3), st.integers(0, 10**13)),
)
runs = st.tuples(
    st.sampled_from([0, 1, 1000]),  # S, the clock error bound in ms
    st.lists(st.one_of(bumps, bumps, resets), min_size=1, max_size=25),
)


class Subject:
    """One real store under test, and how to make it forget everything."""

    def __init__(self, kind: str, redis: RedisServer | None) -> None:
        self.kind = kind
        self.app = f"p-{uuid.uuid4().hex[:10]}"
        self.directory = tempfile.mkdtemp(prefix="spa-prop-") if kind == "file" else None
        self.redis_url = None if redis is None else redis.url
        self.store = self._open()

    def _open(self) -> Store:
        if self.kind == "memory":
            return open_store(f"memory://{uuid.uuid4().hex}", app=self.app)  # a fresh process's store
        if self.kind == "file":
            return open_store(f"file://{self.directory}", app=self.app)
        assert self.redis_url is not None
        return open_store(self.redis_url, app=self.app)

    async def reset(self) -> None:
        if self.kind == "memory":
            self.store = self._open()
        elif self.kind == "file":
            assert self.directory is not None
            shutil.rmtree(self.directory, ignore_errors=True)  # the .spa-version/ directory deleted
        else:
            store: Any = self.store
            await store.client.delete(store.epoch_key, store.history_key)  # FLUSHALL, for this app

    async def close(self) -> None:
        await self.store.aclose()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


async def check(subject: Subject, s: int, ops: list[Bump | Reset]) -> None:
    tau = clock_epoch() + YEAR_MS  # simulated true time
    lead = s  # L at the last bump
    issued: list[int] = []  # every epoch, in order
    counter = 0  # the last epoch of this store lifetime (0: empty)
    lifetime = 0  # bumps in this store lifetime
    pending: Reset | None = None  # the last reset, until the first bump after it
    protected = 0  # every epoch must exceed this (set by a reset that came with its condition)
    for op in ops:
        if isinstance(op, Reset):
            await subject.reset()
            counter, lifetime, pending = 0, 0, op
            continue
        skew = max(-s, min(s, op.skew))
        gap, at_least = op.gap, (max(issued) + 1 if op.floor and issued else None)
        clock = tau + gap + skew
        if pending is not None and issued:
            if pending.mode == "clock":
                gap, at_least = s + lead + 1 + pending.extra, None
                clock = tau + gap + skew
            elif pending.mode == "floor":
                at_least = max(issued) + 1
                clock = max(0, tau + gap + s - pending.extra)  # any clock, far behind included
            else:
                at_least = None
            protected = max(issued) if pending.mode in ("clock", "floor") else 0
        pending = None
        tau += gap
        lead = s if not issued else max(s, lead + 1 - gap)

        subject.store.clock = lambda clock=clock: clock  # type: ignore[misc]
        if op.rollback and lifetime >= 2:
            result = await subject.store.rollback(at_least=at_least)
        else:
            result = await subject.store.bump(f"v{len(issued)}", at_least=at_least)
        epoch = result.release.epoch

        assert epoch == max(counter + 1, clock, at_least or 0), "the rule"
        assert epoch <= tau + lead, "the lead bound"
        assert epoch > protected, "an epoch after a reset is not above every epoch before it"
        issued.append(epoch)
        counter, lifetime = epoch, lifetime + 1


def run(kind: str, redis: RedisServer | None, s: int, ops: list[Bump | Reset]) -> None:
    async def main() -> None:
        subject = Subject(kind, redis)
        try:
            await check(subject, s, ops)
        finally:
            await subject.close()

    asyncio.run(main())


PROPERTY = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", ["memory", "file"])
@settings(PROPERTY, max_examples=300)
@given(run_=runs)
def test_epochs_after_a_reset_exceed_every_epoch_before(
    kind: str, run_: tuple[int, list[Bump | Reset]]
) -> None:
    run(kind, None, *run_)


@pytest.mark.redis
@settings(PROPERTY, max_examples=100)
@given(run_=runs)
def test_epochs_after_a_reset_exceed_every_epoch_before_on_redis(
    redis: RedisServer, run_: tuple[int, list[Bump | Reset]]
) -> None:
    run("redis", redis, *run_)
