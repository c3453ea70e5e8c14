"""Real Redis faults against a real uvicorn app: requests never fail, the version catches up.

Each test drives steady HTTP traffic through `VersionMiddleware` while it breaks Redis
(unreachable, killed, its pub/sub connection killed, paused, a half-open link, ACL
refusals, garbage in the keys). In every case: 0 failed requests, the listener task
stays alive, a bump made during the fault is served within resync interval + slack
after the fault heals, and no task or Redis connection is left behind (docs/redis.md, "What happens when
Redis misbehaves").
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis as sync_redis

from spa_version import VersionMiddleware
from spa_version.stores import parse_url
from spa_version.stores.redis import RedisStore
from tests.support.redis_faults import (
    PING_INTERVAL,
    PING_TIMEOUT,
    RESYNC,
    SLACK,
    FreezableProxy,
    Traffic,
    clients_named,
    listener_alive,
    probe_tasks,
    serve,
    store_url,
)
from tests.support.servers import RedisServer, ThreadedUvicorn, run_cli, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def bump(port: int, app: str, label: str) -> int:
    """Bump straight on Redis (not through any proxy); return the new epoch."""

    async def go() -> int:
        store = RedisStore(parse_url(f"redis://127.0.0.1:{port}/0"), app=app)
        try:
            return (await store.bump(label)).release.epoch
        finally:
            await store.aclose()

    return asyncio.run(go())


@pytest.fixture
def client_name() -> str:
    """The CLIENT SETNAME of the app's connections, so CLIENT LIST can count them."""
    return f"faults-{uuid.uuid4().hex[:8]}"


class Watch:
    """What each test checks on the way out: no failures, listener alive, no leaks."""

    def __init__(
        self,
        middleware: VersionMiddleware,
        server: ThreadedUvicorn,
        traffic: Traffic,
        admin: sync_redis.Redis,
        name: str,
        first: int,
    ) -> None:
        #: The epoch of v1, the release served when the test starts.
        self.first = first
        self.middleware = middleware
        self.server = server
        self.traffic = traffic
        self.admin = admin
        self.name = name
        self.baseline_tasks = probe_tasks(server)

    @property
    def failures(self) -> int:
        listener = self.middleware.listener
        assert listener is not None
        return listener.failures

    def wait_requests(self, count: int = 20) -> None:
        start = len(self.traffic.seen)
        wait_for(lambda: len(self.traffic.seen) >= start + count, timeout=10)

    def healthy(self) -> None:
        assert self.traffic.failures == [], self.traffic.failures[:5]
        assert listener_alive(self.middleware), "the listener task died"

    def no_leaks(self) -> None:
        """Back to one pub/sub and at most one command connection, and the baseline task count."""
        wait_for(lambda: len(clients_named(self.admin, self.name)) <= 2, timeout=RESYNC + SLACK)
        kinds = [c["flags"] for c in clients_named(self.admin, self.name)]
        assert kinds.count("P") <= 1, kinds
        wait_for(lambda: probe_tasks(self.server) <= self.baseline_tasks, timeout=RESYNC + SLACK)


@pytest.fixture
def watched(
    private_redis: RedisServer, admin: sync_redis.Redis, app_name: str, client_name: str
) -> Iterator[Watch]:
    """The app on real uvicorn following the private Redis, v1 served, traffic running."""
    first = bump(private_redis.port, app_name, "v1")
    url = store_url(private_redis.port, client_name)
    with serve(url, app_name) as (middleware, server), Traffic(server.url) as traffic:
        traffic.wait_for_epoch(first, timeout=10)
        yield Watch(middleware, server, traffic, admin, client_name, first)
    # uvicorn stopped: lifespan shutdown closed the store, so nothing of ours is left.
    wait_for(lambda: clients_named(admin, client_name) == [], timeout=10)


def test_redis_unreachable_at_startup(
    app_name: str, client_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis down at start-up requests succeed unstamped; the header appears once Redis does."""
    server = RedisServer()  # a free port that nothing listens on yet
    try:
        url = store_url(server.port, client_name)
        with serve(url, app_name) as (middleware, uv), Traffic(uv.url) as traffic:
            wait_for(lambda: len(traffic.seen) >= 30, timeout=10)
            listener = middleware.listener
            assert listener is not None
            wait_for(lambda: listener.failures >= 1, timeout=10)
            assert set(traffic.seen) == {None}
            assert "cannot reach Redis" in caplog.text
            server.start()
            late = bump(server.port, app_name, "late")
            traffic.wait_for_epoch(late, timeout=RESYNC + SLACK)
            assert traffic.failures == []
            assert listener_alive(middleware)
        # uvicorn stopped: lifespan shutdown closed the store and its connections.
        admin = sync_redis.Redis(port=server.port, decode_responses=True)
        try:
            wait_for(lambda: clients_named(admin, client_name) == [], timeout=10)
        finally:
            admin.close()
    finally:
        server.close()


def test_redis_killed_and_restarted(watched: Watch, private_redis: RedisServer, app_name: str) -> None:
    """Redis killed mid-run: the old version keeps being served; after restart a new bump arrives."""
    before = watched.failures
    private_redis.stop()
    wait_for(lambda: watched.failures > before, timeout=PING_INTERVAL + PING_TIMEOUT + SLACK)
    watched.wait_requests()
    assert watched.traffic.last_epoch == watched.first  # still stamping what it knew
    private_redis.start()
    healed = time.monotonic()
    second = bump(private_redis.port, app_name, "v2")
    assert second > watched.first
    assert private_redis.command("LLEN", f"spa-version:{{{app_name}}}:history") == "2"  # the AOF kept v1
    watched.traffic.wait_for_epoch(second, timeout=RESYNC + SLACK - (time.monotonic() - healed))
    watched.healthy()
    watched.no_leaks()


def test_pubsub_connection_killed(
    watched: Watch, admin: sync_redis.Redis, private_redis: RedisServer, app_name: str
) -> None:
    """CLIENT KILL TYPE pubsub, then a bump at once: the listener re-subscribes and re-reads."""
    old = {c["id"] for c in clients_named(admin, watched.name) if c["flags"] == "P"}
    assert len(old) == 1
    assert admin.client_kill_filter(_type="pubsub") >= 1
    second = bump(private_redis.port, app_name, "v2")
    watched.traffic.wait_for_epoch(second, timeout=RESYNC + SLACK)
    wait_for(
        lambda: {c["id"] for c in clients_named(admin, watched.name) if c["flags"] == "P"} - old,
        timeout=RESYNC + SLACK,
    )
    watched.healthy()
    watched.no_leaks()


def test_redis_paused(
    watched: Watch, admin: sync_redis.Redis, private_redis: RedisServer, app_name: str
) -> None:
    """CLIENT PAUSE ALL with a CLI bump queued behind it: served soon after the pause ends."""
    pause_ms = 3000
    admin.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
    paused_at = time.monotonic()
    results: list[str] = []
    env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    bumper = threading.Thread(target=lambda: results.append(run_cli("bump", "v2", "--json", env=env).stdout))
    bumper.start()
    watched.wait_requests(50)  # requests are served during the pause
    bumper.join(timeout=30)
    assert results and json.loads(results[0])["label"] == "v2", results
    second = json.loads(results[0])["epoch"]
    assert second > watched.first
    remaining = paused_at + pause_ms / 1000 + RESYNC + SLACK - time.monotonic()
    watched.traffic.wait_for_epoch(second, timeout=max(remaining, 0.1))
    watched.healthy()
    watched.no_leaks()


def test_half_open_link_is_detected(
    private_redis: RedisServer,
    admin: sync_redis.Redis,
    app_name: str,
    client_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A link that stops forwarding without closing is given up within ping interval + timeout."""
    first = bump(private_redis.port, app_name, "v1")
    with FreezableProxy(private_redis.port) as proxy:
        url = store_url(proxy.port, client_name)
        with serve(url, app_name) as (middleware, server), Traffic(server.url) as traffic:
            traffic.wait_for_epoch(first, timeout=10)
            watch = Watch(middleware, server, traffic, admin, client_name, first)
            before = watch.failures
            proxy.freeze()
            # The detection bound: silence for ping_interval, then ping_timeout for the
            # PONG, plus one poll of the pub/sub connection (1 s) and scheduling slack.
            wait_for(lambda: watch.failures > before, timeout=PING_INTERVAL + PING_TIMEOUT + 1 + SLACK)
            assert "went silent" in caplog.text or "no answer from" in caplog.text
            second = bump(private_redis.port, app_name, "v2")  # made during the fault, on Redis itself
            watch.wait_requests()
            assert traffic.last_epoch == first
            proxy.heal()
            traffic.wait_for_epoch(second, timeout=RESYNC + SLACK)
            watch.healthy()
            # Redis still sees the frozen connections (the proxy parks them open), so
            # count only those that talk: the listener's fresh pub/sub connection.
            wait_for(lambda: probe_tasks(server) <= watch.baseline_tasks, timeout=RESYNC + SLACK)
        assert proxy.accepted >= 3  # the listener reconnected through the proxy


@pytest.mark.parametrize(
    ("missing", "acl"),
    [
        # May read the key but not subscribe to the channel.
        ("channel", ["resetchannels", "&nothing-here", "~spa-version:*", "+@all"]),
        # May subscribe but not read the key.
        ("key", ["resetkeys", "~nothing-here", "allchannels", "+@all"]),
    ],
)
def test_acl_refusal_is_logged_without_a_tight_loop(
    missing: str,
    acl: list[str],
    private_redis: RedisServer,
    admin: sync_redis.Redis,
    app_name: str,
    client_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An ACL user without permission on the channel or key: a clear error, backoff, no 5xx."""
    admin.acl_setuser("refused", enabled=True, passwords=["+pw"], reset_keys=True, reset_channels=True)
    admin.execute_command("ACL", "SETUSER", "refused", *acl)
    admin.acl_log_reset()
    bump(private_redis.port, app_name, "v1")
    url = store_url(private_redis.port, client_name).replace("redis://", "redis://refused:pw@")
    with serve(url, app_name) as (middleware, server), Traffic(server.url) as traffic:
        listener = middleware.listener
        assert listener is not None
        wait_for(lambda: listener.failures >= 2, timeout=10)
        window_start, attempts_start = time.monotonic(), listener.failures
        # A measuring window, not a synchronisation: how often does it retry?
        wait_for(lambda: time.monotonic() - window_start > 4.0, timeout=10)
        attempts = listener.failures - attempts_start
        assert traffic.failures == []
        assert listener_alive(middleware)
    # Backoff is full jitter capped at the resync interval (2 s): a handful of attempts
    # in 4 s. A tight loop would make thousands.
    assert 1 <= attempts <= 20, attempts
    assert "permission denied by Redis ACL" in caplog.text
    assert f"no permissions to access one of the {missing}s" in caplog.text
    denied = sum(int(entry["count"]) for entry in admin.acl_log())
    assert denied <= listener.failures + 2, denied
    assert ":pw@" not in caplog.text  # the password never reaches a log


# Epochs the bad records claim: far above any clock-based epoch (year 2255, still 13 digits),
# so only their badness keeps them from being served.
@pytest.mark.parametrize(
    "garbage",
    [
        b"not json",
        b'{"epoch": 9000000000099}',
        b'{"epoch":0,"label":"zero","policy":"next-navigation","min_compatible":null,'
        b'"created_at":"2026-11-26T00:00:00Z","note":null}',
        b'{"epoch":9000000000098,"label":"x\\r\\nSet-Cookie: pwned=1","policy":"next-navigation",'
        b'"min_compatible":null,"created_at":"2026-11-26T00:00:00Z","note":null}',
        b'{"epoch":"9000000000097","label":"string-epoch","policy":"next-navigation","min_compatible":null,'
        b'"created_at":"2026-11-26T00:00:00Z","note":null}',
        b'{"epoch":9000000000096,"label":"bad-policy","policy":"reload-everything","min_compatible":null,'
        b'"created_at":"2026-11-26T00:00:00Z","note":null}',
        b'{"epoch":1000000000000000,"label":"sixteen-digits","policy":"next-navigation",'
        b'"min_compatible":null,"created_at":"2026-11-26T00:00:00Z","note":null}',
    ],
    ids=[
        "not-json",
        "missing-fields",
        "epoch-zero",
        "header-injection",
        "string-epoch",
        "bad-policy",
        "epoch-16-digits",
    ],
)
def test_invalid_values_written_into_the_store_are_ignored(
    garbage: bytes,
    watched: Watch,
    admin: sync_redis.Redis,
    private_redis: RedisServer,
    app_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Garbage pushed as the current record and published on the channel is logged and skipped."""
    raw = sync_redis.Redis(port=private_redis.port)
    try:
        raw.lpush(f"spa-version:{{{app_name}}}:history", garbage)
        raw.publish(f"spa-version:{{{app_name}}}:bump", garbage)
        wait_for(lambda: "ignoring a bad" in caplog.text, timeout=RESYNC + SLACK)
        wait_for(lambda: "ignoring a bad current record" in caplog.text, timeout=RESYNC + SLACK)
        watched.wait_requests()
        served = {v for v in watched.traffic.seen if v is not None}
        assert served == {f"{watched.first}; label=v1; policy=next-navigation"}
        # The next real bump is served as usual (the garbage sits below it in history).
        second = bump(private_redis.port, app_name, "v2")
        assert second > watched.first
        watched.traffic.wait_for_epoch(second, timeout=RESYNC + SLACK)
    finally:
        raw.close()
    watched.healthy()
    watched.no_leaks()


def test_corrupt_epoch_counter_refuses_the_bump_and_changes_nothing(
    watched: Watch, admin: sync_redis.Redis, private_redis: RedisServer, app_name: str
) -> None:
    """A hand-written epoch counter makes the CLI bump fail clearly; nothing is written or served."""
    history_key = f"spa-version:{{{app_name}}}:history"
    admin.set(f"spa-version:{{{app_name}}}:epoch", "banana")
    env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    result = run_cli("bump", "v2", env=env)
    assert result.returncode != 0
    assert "epoch counter" in result.stderr and "banana" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert admin.llen(history_key) == 1
    assert watched.traffic.last_epoch == watched.first
    admin.set(f"spa-version:{{{app_name}}}:epoch", str(watched.first))  # the operator repairs it
    second = bump(private_redis.port, app_name, "v2")
    assert second > watched.first
    watched.traffic.wait_for_epoch(second, timeout=RESYNC + SLACK)
    watched.healthy()
    watched.no_leaks()
