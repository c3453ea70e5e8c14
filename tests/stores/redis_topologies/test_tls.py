"""``rediss://`` against a real TLS redis-server with a CA made in the test (docs/redis.md, "TLS")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as sync_redis

from spa_version.stores import StoreError, open_store
from tests.support.epochs import bumped_epoch
from tests.support.redis_faults import PING_INTERVAL, PING_TIMEOUT, SLACK, Traffic, serve
from tests.support.redis_topologies import TlsFiles, TlsRedisServer, make_tls_files
from tests.support.servers import run_cli, wait_for

pytestmark = [pytest.mark.redis]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_redis(tls_files: TlsFiles) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(tls_files)
    server.start()
    try:
        yield server
    finally:
        server.close()


def cli_env(url: str, app: str) -> dict[str, str]:
    return {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app}


def history_length(server: TlsRedisServer, app: str) -> int:
    admin = sync_redis.Redis(port=server.port)
    try:
        return int(admin.llen(f"spa-version:{{{app}}}:history"))
    finally:
        admin.close()


def test_right_ca_bump_and_pubsub_over_tls(
    tls_redis: TlsRedisServer, tls_files: TlsFiles, app_name: str
) -> None:
    """With the CA that signed the server, the CLI bumps over TLS and pub/sub pushes it to the app."""
    url = tls_redis.tls_url(tls_files.ca, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    first = bumped_epoch(run_cli("bump", "--json", "tls-1", env=cli_env(url, app_name)))
    # resync_interval is long, so only pub/sub (over TLS) can deliver the second bump in time.
    with (
        serve(url, app_name, resync_interval=60, startup_timeout=5) as (_mw, server),
        Traffic(server.url) as traffic,
    ):
        traffic.wait_for_epoch(first, timeout=10)
        second = bumped_epoch(run_cli("bump", "--json", "tls-2", env=cli_env(url, app_name)))
        assert second > first
        traffic.wait_for_epoch(second, timeout=SLACK + 2)
        assert traffic.failures == []
    assert history_length(tls_redis, app_name) == 2


async def test_wrong_ca_fails_closed_with_a_clear_message(
    tls_redis: TlsRedisServer, tls_files: TlsFiles, app_name: str
) -> None:
    """A CA that did not sign the server's certificate: every operation is refused, clearly."""
    store = open_store(tls_redis.tls_url(tls_files.other_ca, socket_timeout=2), app=app_name)
    try:
        # The message says what failed, and which option to check.
        with pytest.raises(StoreError, match=r"TLS certificate verification failed.*ssl_ca_certs"):
            await store.get()
        with pytest.raises(StoreError, match="TLS certificate verification failed"):
            await store.bump("never")
    finally:
        await store.aclose()
    assert history_length(tls_redis, app_name) == 0


def test_wrong_ca_cli_exits_with_the_message(
    tls_redis: TlsRedisServer, tls_files: TlsFiles, app_name: str
) -> None:
    """The CLI refuses to bump through an unverified connection and says why, without a traceback."""
    result = run_cli("bump", "never", env=cli_env(tls_redis.tls_url(tls_files.other_ca), app_name))
    assert result.returncode != 0
    assert "TLS certificate verification failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert history_length(tls_redis, app_name) == 0


def test_wrong_ca_middleware_serves_unstamped_and_logs(
    tls_redis: TlsRedisServer, tls_files: TlsFiles, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app keeps serving (no header: nothing trusted was read) and logs the TLS error."""
    good = tls_redis.tls_url(tls_files.ca)
    assert run_cli("bump", "tls-1", env=cli_env(good, app_name)).returncode == 0
    url = tls_redis.tls_url(tls_files.other_ca, socket_timeout=2)
    with serve(url, app_name) as (middleware, server), Traffic(server.url) as traffic:
        listener = middleware.listener
        assert listener is not None
        wait_for(lambda: listener.failures >= 1 and len(traffic.seen) >= 30, timeout=15)
        assert set(traffic.seen) == {None}
        assert traffic.failures == []
    assert "TLS certificate verification failed" in caplog.text
