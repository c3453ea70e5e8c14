"""The deadline waits every test synchronises with (tests/support/servers.py)."""

from __future__ import annotations

import pytest

from tests.support.servers import async_wait_for, wait_for


def test_wait_for_returns_the_first_truthy_result() -> None:
    """wait_for polls until the predicate is truthy, and hands back that value."""
    answers = iter([0, None, "", "ready"])
    assert wait_for(lambda: next(answers), timeout=5, interval=0) == "ready"


def test_wait_for_fails_with_the_message_after_the_deadline() -> None:
    """A condition that never holds fails after the timeout, with the caller's message."""
    with pytest.raises(AssertionError, match="never ready"):
        wait_for(lambda: False, timeout=0.05, interval=0.01, message="never ready")


def test_a_message_function_is_called_when_the_wait_fails() -> None:
    """A callable message is built at the deadline, so it can show the last value seen."""
    seen: list[int] = []
    with pytest.raises(AssertionError, match=r"last seen: \d+"):
        wait_for(
            lambda: seen.append(len(seen)),
            timeout=0.05,
            interval=0.01,
            message=lambda: f"last seen: {seen[-1]}",
        )


async def test_async_wait_for_awaits_an_async_predicate() -> None:
    """An ``async def`` predicate is awaited each round: its result counts, not the coroutine."""
    rounds: list[int] = []

    async def ready() -> int:
        rounds.append(1)
        return len(rounds) if len(rounds) >= 3 else 0

    assert await async_wait_for(ready, timeout=5, interval=0) == 3


async def test_async_wait_for_fails_on_an_async_predicate_that_stays_false() -> None:
    """A coroutine object is truthy; awaiting it is what makes a false answer fail."""

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="condition not met within 0.05 s"):
        await async_wait_for(never, timeout=0.05, interval=0.01)
