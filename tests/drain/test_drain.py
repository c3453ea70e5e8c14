"""Websocket drain (docs/protocol.md, "Websocket drain"): real uvicorn, real `websockets`
clients, the memory store."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from spa_version.current import CurrentVersion
from spa_version.deploy.drain import WebsocketDrain, spread_delays
from spa_version.deploy.liveness import LIVE, PENDING, STALE, Liveness
from spa_version.options import DeployOptions
from spa_version.protocol import CLOSE_CODE_DRAIN, CLOSE_CODE_DRAIN_FALLBACK, close_reason, parse_header
from spa_version.release import Release
from spa_version.stores import Store
from tests.support.drain_app import build_middleware, close_clients, open_clients
from tests.support.servers import ThreadedUvicorn, async_wait_for
from tests.support.stalled import StalledWebsocket

# -- the schedule, as a pure function ---------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 7, 100])
def test_spread_puts_one_close_in_each_slice_of_the_window(count: int) -> None:
    """Stratified jitter: close i of n falls inside slice i of the window, never outside it."""
    window = 10.0
    delays = spread_delays(count, window, random.Random(count))
    assert len(delays) == count
    step = window / count
    for i, delay in enumerate(delays):
        assert i * step <= delay < (i + 1) * step
    assert delays == sorted(delays)


def test_spread_is_jittered_not_a_fixed_grid() -> None:
    """Two schedules for the same count differ (jitter), and no delay sits on a slice boundary."""
    a = spread_delays(50, 5.0, random.Random(1))
    b = spread_delays(50, 5.0, random.Random(2))
    assert a != b
    assert spread_delays(0, 5.0) == []


def test_bad_drain_options_are_refused(store: Store) -> None:
    """Negative times and a non-error status are refused when the middleware is built."""
    with pytest.raises(ValueError, match="drain_grace"):
        build_middleware(store, drain_grace=-1)
    with pytest.raises(ValueError, match="drain_stale_status"):
        build_middleware(store, drain_stale_status=200)
    with pytest.raises(ValueError, match="drain_close_timeout"):
        build_middleware(store, drain_close_timeout=0)


# -- liveness ------------------------------------------------------------------------


def _release(epoch: int, label: str) -> Release:
    return Release(epoch, label, "next-navigation", None)


def test_liveness_follows_the_current_label() -> None:
    """live while the build is current; stale after a bump away; live again on rollback."""
    current = CurrentVersion("X-SPA-Version")
    liveness = Liveness("A", current)
    seen: list[tuple[str, str]] = []
    liveness.add_callback(lambda old, new, release: seen.append((old, new)))
    assert liveness.state == LIVE  # no release yet
    current.offer(_release(1, "A"))
    assert liveness.state == LIVE
    current.offer(_release(2, "B"))
    assert liveness.state == STALE
    current.offer(_release(3, "A"))
    assert liveness.state == LIVE
    assert seen == [(LIVE, STALE), (STALE, LIVE)]


def test_a_build_not_released_yet_is_pending_not_stale() -> None:
    """green before its bump is pending (no traffic, nothing to drain); the bump makes it live."""
    current = CurrentVersion("X-SPA-Version")
    current.offer(_release(1, "A"))
    liveness = Liveness("B", current)
    assert liveness.state == PENDING
    current.offer(_release(2, "B"))
    assert liveness.state == LIVE


# -- the drain against real sockets ---------------------------------------------------


async def test_stale_process_closes_every_socket_with_1012_and_the_new_epoch(store: Store) -> None:
    """After a bump to another build, each socket gets a real 1012 close whose reason is the new header."""
    await store.bump("A")
    mw, log = build_middleware(store, drain_grace=0.0, drain_window=0.5)
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 10)
        await async_wait_for(lambda: mw.deployment.websockets == 10)
        new = (await store.bump("B")).release
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=20)
        assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
        assert {c.reason for c in clients} == {close_reason(new)}
        assert parse_header(clients[0].reason or "").epoch == new.epoch
        # The app's own handler saw an ordinary disconnect, carrying the code the client echoed.
        await async_wait_for(lambda: len(log.disconnects) == 10)
        assert set(log.disconnects) == {CLOSE_CODE_DRAIN}
        assert mw.deployment.websockets == 0
        await close_clients(clients)


async def test_closes_are_spread_over_the_window_after_the_grace(store: Store) -> None:
    """No close before the grace; the closes spread across the window instead of landing at once."""
    await store.bump("A")
    grace, window, count = 0.5, 3.0, 40
    mw, _ = build_middleware(store, drain_grace=grace, drain_window=window)
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", count)
        await async_wait_for(lambda: mw.deployment.websockets == count)
        bumped = time.monotonic()  # the process can only learn of the bump after this
        await store.bump("B")
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=30)
        times = sorted((c.closed_at or 0.0) - bumped for c in clients)
        assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
        # Grace: a lower bound, so load on the machine cannot break it.
        assert times[0] >= grace - 0.01
        # Spread, judged on the distribution and not on totals: a uniform spread over the
        # window puts the middle half of the closes about window/2 apart (an all-at-once
        # close puts them ~0 apart), and no tenth of the window holds a quarter of them.
        q1, _, q3 = statistics.quantiles(times, n=4)
        assert q3 - q1 >= window / 4
        buckets: dict[int, int] = {}
        for t in times:
            buckets[int((t - times[0]) / (window / 10))] = (
                buckets.get(int((t - times[0]) / (window / 10)), 0) + 1
            )
        assert max(buckets.values()) <= count // 4
        await close_clients(clients)


async def test_new_handshakes_at_a_stale_process_get_503(store: Store) -> None:
    """Once stale, the process refuses new websockets with 503, so clients go elsewhere."""
    await store.bump("A")
    mw, _ = build_middleware(store, drain_grace=0.0, drain_window=0.1)
    with ThreadedUvicorn(mw) as server:
        await store.bump("B")
        await async_wait_for(lambda: mw.deployment.state == STALE)
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(server.ws_url + "/ws", open_timeout=10)
        assert refused.value.response.status_code == 503


async def test_stale_handshakes_can_be_accepted_and_are_then_drained(store: Store) -> None:
    """With drain_stale_status=None a late handshake is accepted, then closed with 1012 after the grace."""
    await store.bump("A")
    mw, _ = build_middleware(store, drain_grace=0.2, drain_window=0.1, drain_stale_status=None)
    with ThreadedUvicorn(mw) as server:
        await store.bump("B")
        await async_wait_for(lambda: mw.deployment.drain is not None and mw.deployment.drain.swept)
        [client] = await open_clients(server.ws_url + "/ws", 1)
        await async_wait_for(lambda: client.closed_at is not None, timeout=10)
        assert client.code == CLOSE_CODE_DRAIN
        await close_clients([client])


async def test_a_pending_build_drains_nothing(store: Store) -> None:
    """A build that was never live (green before its bump) keeps its sockets on an unrelated bump."""
    await store.bump("A")
    mw, _ = build_middleware(store, build="B", drain_grace=0.0, drain_window=0.1)
    with ThreadedUvicorn(mw) as server:
        [client] = await open_clients(server.ws_url + "/ws", 1)
        await store.bump("C")
        await async_wait_for(lambda: mw.current.release is not None and mw.current.release.label == "C")
        assert mw.deployment.state == PENDING
        # The drain never starts for a pending build (no timing involved).
        assert mw.deployment.drain is not None and not mw.deployment.drain.started
        assert client.closed_at is None
        await close_clients([client])


async def test_shutdown_closes_the_rest_with_1012_within_the_shutdown_window(store: Store) -> None:
    """Lifespan shutdown closes the open sockets the same way, and returns within its window."""
    await store.bump("A")
    mw, _ = build_middleware(store, drain_shutdown_window=1.0)
    with ThreadedUvicorn(mw) as server:
        clients = await open_clients(server.ws_url + "/ws", 8)
        await async_wait_for(lambda: mw.deployment.websockets == 8)
        assert mw.deployment.drain is not None
        loop = mw.follower.task.get_loop() if mw.follower and mw.follower.task else None
        assert loop is not None
        # What lifespan.shutdown runs, on the server's own loop. uvicorn itself sends that
        # event only after cutting every socket (docs/deploy-haproxy.md), so call it directly.
        future = asyncio.run_coroutine_threadsafe(mw.deployment.drain.aclose(), loop)
        await asyncio.wrap_future(future)  # bounded by shutdown_window (+1 s) inside aclose
        await async_wait_for(lambda: all(c.closed_at is not None for c in clients), timeout=10)
        assert {c.code for c in clients} == {CLOSE_CODE_DRAIN}
        assert {c.reason for c in clients} == {close_reason(_release_of(mw))}
        await close_clients(clients)


def _release_of(mw: object) -> Release:
    release = mw.current.release  # type: ignore[attr-defined]
    assert isinstance(release, Release)
    return release


async def test_without_a_build_nothing_is_tracked(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """No build declared: no deploy switch, no counting, and a bump closes nothing."""
    monkeypatch.delenv("SPA_VERSION_BUILD", raising=False)
    await store.bump("A")
    mw, _ = build_middleware(store, build=None)
    assert mw.deployment.build is None and mw.deployment.count_request is None
    with ThreadedUvicorn(mw) as server:
        [client] = await open_clients(server.ws_url + "/ws", 1)
        await store.bump("B")
        await async_wait_for(lambda: mw.current.release is not None and mw.current.release.label == "B")
        await client.conn.send("still here")
        assert await asyncio.wait_for(client.conn.recv(), 10) == "still here"
        await close_clients([client])


def test_build_comes_from_the_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPA_VERSION_BUILD declares the build; a bad label is refused at startup."""
    monkeypatch.setenv("SPA_VERSION_BUILD", "env-build")
    mw, _ = build_middleware(store, build=None)
    assert mw.deployment.build == "env-build"
    monkeypatch.setenv("SPA_VERSION_BUILD", "bad label!")
    with pytest.raises(ValueError):
        build_middleware(store, build=None)


async def test_a_second_lifespan_still_drains(store: Store) -> None:
    """The same middleware served twice (a server restart in one process) drains on the second run too."""
    await store.bump("A")
    mw, _ = build_middleware(store, drain_grace=0.0, drain_window=0.2)
    with ThreadedUvicorn(mw) as server:
        [first] = await open_clients(server.ws_url + "/ws", 1)
    await close_clients([first])
    with ThreadedUvicorn(mw) as server:
        [client] = await open_clients(server.ws_url + "/ws", 1)
        await store.bump("B")
        await async_wait_for(lambda: client.closed_at is not None, timeout=10)
        assert client.code == CLOSE_CODE_DRAIN
        await close_clients([client])


async def test_a_close_the_server_refuses_does_not_count_as_closed() -> None:
    """A server that refuses the drain's close (1012 and 4012 alike) leaves the socket open:
    it stays tracked and counted (``spa-version status``, ``bump --wait``) until its
    connection really ends, and nothing reports it drained."""
    current = CurrentVersion("X-SPA-Version")
    current.offer(_release(1, "A"))
    drain = WebsocketDrain(Liveness("A", current), current, DeployOptions(drain_grace=0.0, drain_window=0.0))
    emptied: list[bool] = []
    drain.on_empty = lambda: emptied.append(True)
    drain.attach()
    refused: list[int] = []
    inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})

    async def server_send(message: dict[str, object]) -> None:
        if message["type"] == "websocket.close":
            refused.append(int(message["code"]))  # type: ignore[call-overload]
            raise RuntimeError(f"invalid close code {message['code']}")

    async def app(scope: object, receive: object, send: object) -> None:
        await inbox.get()
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        await inbox.get()  # until the client leaves

    served = asyncio.create_task(drain.serve({"type": "websocket"}, inbox.get, server_send, app))
    await async_wait_for(lambda: drain.open_count == 1)
    current.offer(_release(2, "B"))  # stale: the drain starts and tries to close
    await async_wait_for(lambda: drain.swept)
    assert refused[:2] == [CLOSE_CODE_DRAIN, CLOSE_CODE_DRAIN_FALLBACK]
    assert drain.open_count == 1 and drain.closed_count == 0 and emptied == []
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})  # the connection ends
    await asyncio.wait_for(served, 10)
    assert drain.open_count == 0 and emptied == [True]


async def test_a_server_that_refuses_1012_gets_4012_with_the_same_reason() -> None:
    """Where the server refuses 1012 (autobahn, under Daphne), the same close goes out as
    4012 with the same reason, and later closes use 4012 at once."""
    current = CurrentVersion("X-SPA-Version")
    current.offer(_release(1, "A"))
    drain = WebsocketDrain(Liveness("A", current), current, DeployOptions(drain_grace=0.0, drain_window=0.0))
    drain.attach()
    sent: list[tuple[object, object]] = []
    inboxes: list[asyncio.Queue[dict[str, object]]] = []

    async def server_send(message: dict[str, object]) -> None:
        if message["type"] == "websocket.close":
            if message["code"] == CLOSE_CODE_DRAIN:
                raise RuntimeError("invalid close code 1012 (must be 1000 or from [3000, 4999])")
            sent.append((message["code"], message["reason"]))

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        await receive()  # type: ignore[operator]

    served = []
    for _ in range(2):
        inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        inboxes.append(inbox)
        served.append(asyncio.create_task(drain.serve({"type": "websocket"}, inbox.get, server_send, app)))
    await async_wait_for(lambda: drain.open_count == 2)
    new = _release(2, "B")
    current.offer(new)
    await async_wait_for(lambda: drain.swept)
    assert sent == [(CLOSE_CODE_DRAIN_FALLBACK, close_reason(new))] * 2
    assert drain.close_code == CLOSE_CODE_DRAIN_FALLBACK
    assert drain.open_count == 0 and drain.closed_count == 2
    for inbox in inboxes:
        inbox.put_nowait({"type": "websocket.disconnect", "code": CLOSE_CODE_DRAIN_FALLBACK})
    await asyncio.wait_for(asyncio.gather(*served), 10)


# -- clients that stop reading ----------------------------------------------------------


async def test_clients_that_stop_reading_do_not_hold_up_the_drain(store: Store) -> None:
    """3 clients that stop reading (their windows full, the server's sends blocked) beside
    20 that read: every reading client gets its 1012 within the window; each stalled
    close gives up after ``drain_close_timeout``, its handler is cancelled, and uvicorn's
    transport is aborted: uvicorn lets go of the connection (a transport only closed would
    wait for ever for a buffer the client never drains, and keep uvicorn's shutdown waiting)."""
    await store.bump("A")
    window, limit = 2.0, 0.5
    mw, _ = build_middleware(store, drain_grace=0.0, drain_window=window, drain_close_timeout=limit)
    with ThreadedUvicorn(mw) as server:
        stalled = [StalledWebsocket(server.port, "/flood") for _ in range(3)]
        try:
            healthy = await open_clients(server.ws_url + "/ws", 20)
            await async_wait_for(lambda: mw.deployment.websockets == 23)
            await async_wait_for(lambda: all(s.blocked() for s in stalled), timeout=15, interval=0.2)
            drain = mw.deployment.drain
            assert drain is not None
            bumped = time.monotonic()
            await store.bump("B")
            # Within the window (plus the slack of a loaded machine), not one after another.
            await async_wait_for(
                lambda: all(c.closed_at is not None for c in healthy),
                timeout=window + 5,
                message=lambda: f"{sum(c.closed_at is None for c in healthy)} of 20 still open",
            )
            assert {c.code for c in healthy} == {CLOSE_CODE_DRAIN}
            # Each close went out at its own moment: no wait behind a stalled one.
            assert max((c.closed_at or 0.0) - bumped for c in healthy) < window + 5
            await async_wait_for(lambda: drain.aborted_count == 3 and drain.swept, timeout=window + 5)
            assert drain.closed_count == 20
            await async_wait_for(lambda: mw.deployment.websockets == 0)
            await close_clients(healthy)
            # What uvicorn's shutdown waits on ("Waiting for connections to close").
            connections = server.server.server_state.connections
            await async_wait_for(lambda: not connections, message=lambda: f"{len(connections)} left")
        finally:
            for client in stalled:
                client.close()


async def test_a_close_past_its_time_limit_cancels_the_handler_quietly() -> None:
    """A server whose send never returns (a full buffer): after ``drain_close_timeout`` the
    drain cancels the connection's handler, `serve` returns as a finished app does (no
    CancelledError for the server to log), and the socket is no longer tracked."""
    current = CurrentVersion("X-SPA-Version")
    current.offer(_release(1, "A"))
    options = DeployOptions(drain_grace=0.0, drain_window=0.0, drain_close_timeout=0.2)
    drain = WebsocketDrain(Liveness("A", current), current, options)
    drain.attach()
    handler_cancelled: list[bool] = []

    async def server_send(message: dict[str, object]) -> None:
        if message["type"] == "websocket.close":
            await asyncio.Event().wait()  # the buffer never drains

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        try:
            await asyncio.Event().wait()  # blocked in a send of its own, as a flood would be
        except asyncio.CancelledError:
            handler_cancelled.append(True)
            raise

    served = asyncio.create_task(drain.serve({"type": "websocket"}, asyncio.Queue().get, server_send, app))
    await async_wait_for(lambda: drain.open_count == 1)
    current.offer(_release(2, "B"))
    await asyncio.wait_for(served, 10)  # returns, not raises
    assert handler_cancelled == [True]
    assert drain.aborted_count == 1 and drain.closed_count == 0 and drain.open_count == 0
    await async_wait_for(lambda: drain.swept)
