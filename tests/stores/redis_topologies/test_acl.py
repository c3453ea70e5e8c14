"""The least-privilege ACLs of docs/redis.md, applied verbatim to a real redis-server."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest
import redis as sync_redis

from spa_version.stores import StoreError, open_store
from tests.support.epochs import bumped_epoch
from tests.support.redis_faults import PING_INTERVAL, PING_TIMEOUT, SLACK, Traffic, serve
from tests.support.redis_topologies import APP, DOC, documented_acl_lines
from tests.support.servers import RedisServer, redis_server, run_cli, wait_for

pytestmark = [pytest.mark.redis]


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[RedisServer]:
    """A redis-server whose only users besides default are the documented ones."""
    with redis_server() as server:
        admin = sync_redis.Redis(port=server.port)
        try:
            for line in documented_acl_lines():
                assert admin.execute_command(*shlex.split(line)) in (b"OK", "OK", True)
        finally:
            admin.close()
        yield server


def url(server: RedisServer, user: str, password: str, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0" + (f"?{query}" if query else "")


def web(server: RedisServer, **params: object) -> str:
    return url(server, "spa-web", "web-secret", **params)


def deploy(server: RedisServer) -> str:
    return url(server, "spa-deploy", "deploy-secret")


def history_length(server: RedisServer, app: str) -> int:
    admin = sync_redis.Redis(port=server.port)
    try:
        return int(admin.llen(f"spa-version:{{{app}}}:history"))
    finally:
        admin.close()


def test_documented_users_exist_with_no_other_rights(acl_redis: RedisServer) -> None:
    """The two users have exactly the documented commands, one key pattern and one channel."""
    admin = sync_redis.Redis(port=acl_redis.port, decode_responses=True)
    try:
        expected = {
            "spa-web": {"+lindex", "+lrange", "+subscribe", "+ping"},
            "spa-deploy": {"+lindex", "+lrange", "+subscribe", "+ping"}
            | {"+eval", "+get", "+set", "+lpush", "+ltrim", "+publish", "+time"},
        }
        for user, commands in expected.items():
            info = admin.acl_getuser(user)
            assert info["keys"] == ["~spa-version:{shop}:*"], info
            assert info["channels"] == ["&spa-version:{shop}:bump"], info
            assert info["categories"] == ["-@all"], info
            assert set(info["commands"]) == commands, info
    finally:
        admin.close()


def test_middleware_user_follows_bumps_made_by_the_deploy_user(acl_redis: RedisServer) -> None:
    """The read-and-subscribe user serves each bump the deploy user makes, over pub/sub."""
    env = {"SPA_VERSION_URL": deploy(acl_redis), "SPA_VERSION_APP": APP}
    first = bumped_epoch(run_cli("bump", "--json", "acl-1", env=env))
    web_url = web(acl_redis, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    with (
        serve(web_url, APP, resync_interval=60, startup_timeout=5) as (middleware, server),
        Traffic(server.url) as tr,
    ):
        tr.wait_for_epoch(first, timeout=10)
        second = bumped_epoch(run_cli("bump", "--json", "acl-2", env=env))
        assert second > first
        # resync is 60 s: only the subscription can deliver this in time.
        tr.wait_for_epoch(second, timeout=SLACK + 2)
        listener = middleware.listener
        assert listener is not None and listener.failures == 0, listener.last_error if listener else None
        assert tr.failures == []
    for command in ("get", "history"):
        result = run_cli(command, env=env)
        assert result.returncode == 0 and "acl-2" in result.stdout, result.stderr


def test_middleware_user_cannot_bump(acl_redis: RedisServer) -> None:
    """The middleware's credentials cannot write: a clear refusal, and nothing is written."""
    before = history_length(acl_redis, APP)
    result = run_cli("bump", "sneaky", env={"SPA_VERSION_URL": web(acl_redis), "SPA_VERSION_APP": APP})
    assert result.returncode != 0
    assert "permission denied by Redis ACL" in result.stderr and "eval" in result.stderr, result.stderr
    assert history_length(acl_redis, APP) == before


@pytest.mark.parametrize("user", ["web", "deploy"])
async def test_users_cannot_reach_another_app(acl_redis: RedisServer, user: str) -> None:
    """Neither user can read, or bump, another app's release in the same Redis."""
    store = open_store(web(acl_redis) if user == "web" else deploy(acl_redis), app="other-app")
    try:
        with pytest.raises(StoreError, match="permission denied by Redis ACL"):
            await store.get()
        with pytest.raises(StoreError, match="permission denied by Redis ACL"):
            await store.bump("cross")
    finally:
        await store.aclose()
    assert history_length(acl_redis, "other-app") == 0


def documented_fleet_lines() -> list[str]:
    """The ```acl-fleet block of docs/redis.md: the deploy switch's extra rules."""
    blocks = re.findall(r"```acl-fleet\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/redis.md must have exactly one ```acl-fleet block"
    return [line.strip() for line in blocks[0].splitlines() if line.strip()]


def test_deploy_switch_heartbeat_and_status_with_the_fleet_rules(caplog: pytest.LogCaptureFixture) -> None:
    """With the documented fleet rules, a build-declaring worker heartbeats and `status` lists it."""
    with redis_server() as server:
        admin = sync_redis.Redis(port=server.port, decode_responses=True)
        try:
            for line in [*documented_acl_lines(), *documented_fleet_lines()]:
                admin.execute_command(*shlex.split(line))
            env = {"SPA_VERSION_URL": deploy(server), "SPA_VERSION_APP": APP}
            epoch = bumped_epoch(run_cli("bump", "--json", "fleet-1", env=env))
            options = {"build": "fleet-1", "heartbeat_interval": 0.5, "drain_on_sigterm": False}
            with serve(web(server), APP, **options) as (_mw, uv), Traffic(uv.url) as traffic:
                traffic.wait_for_epoch(epoch, timeout=10)
                wait_for(lambda: admin.scard(f"spa-version:{{{APP}}}:fleet") == 1, timeout=10)
                status = run_cli("status", "--json", env=env)
                assert status.returncode == 0, status.stderr
                assert "fleet-1" in status.stdout
                assert traffic.failures == []
            assert "permission" not in caplog.text.lower(), caplog.text[-2000:]
        finally:
            admin.close()
