"""The bump script's use of the Redis server's clock (TIME), with and without ``+time`` in the deploy ACL.

docs/redis.md lists ``+time`` for the deploy user. A deploy user set up before the script
called TIME still bumps, on the deploy host's clock alone (``redis.pcall``): upgrading the
package must not stop deploys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from spa_version.stores import open_store
from tests.support.servers import RedisServer, run_cli

pytestmark = pytest.mark.redis

APP = "shop"  # the app the documented ACL lines name
DOCS = Path(__file__).resolve().parents[3] / "docs" / "redis.md"
Admin = tuple[RedisServer, sync_redis.Redis]


def documented_deploy_rules() -> list[str]:
    """The ``ACL SETUSER spa-deploy`` line of docs/redis.md, as arguments."""
    text = DOCS.read_text()
    block = re.search(r"```acl\n(.*?)```", text, re.S)
    assert block is not None
    line = next(ln for ln in block.group(1).splitlines() if ln.startswith("ACL SETUSER spa-deploy "))
    return line.split()[3:]


@pytest.fixture
def acl_redis() -> Iterator[Admin]:
    """A redis-server of this test's own (ACL users and ACL LOG are server-wide) and an admin client."""
    server = RedisServer()
    server.start()
    admin = sync_redis.Redis(port=server.port, socket_timeout=5, decode_responses=True)
    try:
        yield server, admin
    finally:
        admin.close()
        server.close()


def set_deploy_user(admin: sync_redis.Redis, rules: list[str]) -> None:
    admin.execute_command("ACL", "DELUSER", "spa-deploy")
    admin.execute_command("ACL", "SETUSER", "spa-deploy", *rules)
    admin.execute_command("ACL", "LOG", "RESET")


def refused(admin: sync_redis.Redis) -> set[str]:
    return {entry["object"] for entry in admin.execute_command("ACL", "LOG")}


def deploy_url(server: RedisServer) -> str:
    password = next(r[1:] for r in documented_deploy_rules() if r.startswith(">"))
    return f"redis://spa-deploy:{password}@127.0.0.1:{server.port}/0"


async def bump_with_a_stopped_clock(url: str) -> int:
    """A bump from a deploy host whose clock reads 1 ms after 1970: only Redis's clock can lift it."""
    store = open_store(url, app=APP)
    store.clock = lambda: 1  # type: ignore[method-assign]
    try:
        return (await store.bump("v1")).release.epoch
    finally:
        await store.aclose()


async def test_documented_deploy_user_floors_with_the_server_clock(acl_redis: Admin) -> None:
    server, admin = acl_redis
    rules = documented_deploy_rules()
    assert "+time" in rules
    set_deploy_user(admin, rules)
    before = int(time.time() * 1000)
    epoch = await bump_with_a_stopped_clock(deploy_url(server))
    assert before - 60_000 < epoch < int(time.time() * 1000) + 60_000, "Redis TIME decided the epoch"
    assert "time" not in refused(admin)


async def test_deploy_user_without_time_still_bumps(acl_redis: Admin) -> None:
    """An ACL from before TIME: the bump uses the deploy host's clock alone; ACL LOG records the refusal."""
    server, admin = acl_redis
    set_deploy_user(admin, [r for r in documented_deploy_rules() if r != "+time"])
    assert await bump_with_a_stopped_clock(deploy_url(server)) == 1, "no server clock: counter + 1"
    assert "time" in refused(admin)
    result = run_cli("--url", deploy_url(server), "--app", APP, "bump", "v2")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[3]) > 1_000_000_000_000, "the CLI's own clock floors it"


def test_deploy_user_without_publish_is_told_in_one_line(acl_redis: Admin) -> None:
    """A command the script needs is refused: exit 1, one line, "permission denied by Redis ACL"."""
    server, admin = acl_redis
    set_deploy_user(admin, [r for r in documented_deploy_rules() if r != "+publish"])
    result = run_cli("--url", deploy_url(server), "--app", APP, "bump", "v1")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "permission denied by Redis ACL" in result.stderr and "Traceback" not in result.stderr
    assert "publish" in result.stderr


@pytest.mark.parametrize("missing", ["+publish", "+lpush", "+ltrim"])
def test_a_refused_write_leaves_the_store_as_it_was(acl_redis: Admin, missing: str) -> None:
    """Redis keeps what a script ran before a refused command: every write is checked first."""
    server, admin = acl_redis
    set_deploy_user(admin, documented_deploy_rules())
    assert run_cli("--url", deploy_url(server), "--app", APP, "bump", "v1").returncode == 0
    keys = sorted(admin.keys("*"))
    before = {key: admin.dump(key) for key in keys}
    set_deploy_user(admin, [r for r in documented_deploy_rules() if r != missing])
    result = run_cli("--url", deploy_url(server), "--app", APP, "bump", "v2")
    assert result.returncode == 1 and "permission denied by Redis ACL" in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert sorted(admin.keys("*")) == keys
    assert {key: admin.dump(key) for key in keys} == before
