"""Forged and corrupt fleet records, through the real CLI, on Redis (written as the documented
web ACL user) and on the file store.

A record is another process's word (docs/deploy-haproxy.md, "Fleet status"): one that does
not validate is skipped and reported once, in one line naming it; nothing from a record
reaches the terminal as a control sequence; no command fails or changes the store because
of it. A valid record claiming an epoch far ahead lifts the next epoch by at most
`FLOOR_BOUND_MS` past the store's counter and the clock (docs/protocol.md, "Epochs").
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis

from spa_version.deploy.fleet import FLOOR_BOUND_MS
from spa_version.fleet_record import FleetRecord
from spa_version.release import MAX_EPOCH
from spa_version.stores import open_store
from spa_version.stores.base import clock_epoch
from tests.support.servers import RedisServer, redis_server, run_cli
from tests.support.store_loss import redis_dump

DOCS = Path(__file__).resolve().parents[2] / "docs" / "redis.md"


def record(**fields: object) -> dict[str, object]:
    """A record as the heartbeat writes it, with *fields* replaced."""
    base = FleetRecord(host="bad", pid=1, updated_at=round(time.time(), 3), interval=5.0, ttl=60.0)
    return {**base.to_dict(), **fields}


def raw_with(text: str) -> bytes:
    """A fresh record whose JSON has the field text *text* spliced in (values JSON cannot build)."""
    body = json.dumps(record(), separators=(",", ":"))
    return (body[:-1] + "," + text + "}").encode()


#: (case, the name the record is stored under, its raw bytes). Each must be skipped.
CORRUPT = [
    ("epoch-1e999", "bad:1", raw_with('"epoch":1e999')),
    ("build-7", "bad:1", json.dumps(record(build=7)).encode()),
    ("build-list", "bad:1", json.dumps(record(build=["x"])).encode()),
    ("nested-100000", "bad:1", b"[" * 100_000 + b"]" * 100_000),
    ("pinned-many", "bad:1", json.dumps(record(slot="blue", pinned="many")).encode()),
    ("streams-negative", "bad:1", json.dumps(record(streams=-1)).encode()),
    ("updated_at-yesterday", "bad:1", json.dumps(record(updated_at="yesterday")).encode()),
    ("epoch-string", "bad:1", json.dumps(record(epoch="5")).encode()),
    ("host-esc-bel", "evil\x1b]0;pwned\x07:1", json.dumps(record(host="evil\x1b]0;pwned\x07")).encode()),
    ("raw-esc-bel", "evil\x1b[2J\x07:1", json.dumps(record()).replace("bad", "evil\x1b[2J\x07").encode()),
    ("one-megabyte", "bad:1", raw_with('"pad":"' + "x" * 1_000_000 + '"')),
    # Valid in every field, but written a decade ahead: it would never expire, and as a
    # live process of another build behind the bump it would hold up every --wait.
    (
        "updated_at-far-future",
        "bad:1",
        json.dumps(record(build="A", epoch=1, updated_at=round(time.time()) + 10**9)).encode(),
    ),
]


@dataclass
class Backend:
    """One store with a fleet: how the CLI reaches it, and how a web process writes a record."""

    kind: str
    env: dict[str, str]
    app: str
    web: sync_redis.Redis | None = None
    directory: Path | None = None
    server: RedisServer | None = None

    def write(self, name: str, raw: bytes, ttl: int = 60) -> None:
        """Write *raw* as the record named *name* (``host:pid``), as a web process could."""
        if self.web is not None:
            with self.web.pipeline(transaction=True) as pipe:
                pipe.set(f"spa-version:{{{self.app}}}:proc:{name}".encode(), raw, ex=ttl)
                pipe.sadd(f"spa-version:{{{self.app}}}:fleet", name.encode())
                pipe.execute()
        else:
            assert self.directory is not None
            fleet = self.directory / f"{self.app}.fleet"
            fleet.mkdir(parents=True, exist_ok=True)
            host, _, pid = name.rpartition(":")
            (fleet / f"{host}-{pid}.json").write_bytes(raw)

    def stored_name(self, name: str) -> str:
        """The name the CLI reports a bad record under (the key, or the file's stem), escaped."""
        if self.kind == "file":
            host, _, pid = name.rpartition(":")
            name = f"{host}-{pid}"
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)

    def snapshot(self) -> object:
        if self.server is not None:
            return redis_dump(self.server, self.app)
        assert self.directory is not None
        return {p.name: p.read_bytes() for p in sorted(self.directory.rglob("*")) if p.is_file()}


def documented_acl(block: str, app: str) -> list[list[str]]:
    """The ``ACL SETUSER`` lines of a fenced block of docs/redis.md, for *app* and users of its own
    (ACL users are server-wide, and tests share one redis-server)."""
    found = re.search(rf"```{block}\n(.*?)```", DOCS.read_text(), re.S)
    assert found is not None, block
    lines = []
    for line in found.group(1).strip().splitlines():
        line = line.replace("{shop}", f"{{{app}}}").replace("spa-web ", f"spa-web-{app} ")
        lines.append(line.replace("spa-deploy ", f"spa-deploy-{app} ").split())
    return lines


@pytest.fixture(params=["redis", "file"])
def backend(request: pytest.FixtureRequest, app_name: str, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "file":
        directory = tmp_path / "store"
        yield Backend(
            "file",
            {"SPA_VERSION_URL": f"file://{directory}", "SPA_VERSION_APP": app_name},
            app_name,
            directory=directory,
        )
        return
    server: RedisServer = request.getfixturevalue("redis")
    admin = sync_redis.Redis(port=server.port, socket_timeout=5)
    for block in ("acl", "acl-fleet"):
        for line in documented_acl(block, app_name):
            admin.execute_command(*line)
    web = sync_redis.Redis(
        port=server.port, username=f"spa-web-{app_name}", password="web-secret", socket_timeout=5
    )
    url = f"redis://spa-deploy-{app_name}:deploy-secret@127.0.0.1:{server.port}/0"
    try:
        yield Backend(
            "redis", {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}, app_name, web=web, server=server
        )
    finally:
        web.close()
        for user in (f"spa-web-{app_name}", f"spa-deploy-{app_name}"):
            admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def clean(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback, nothing from a record raw on the terminal."""
    out = result.stdout + result.stderr
    assert "Traceback" not in out, result.stderr
    for control in ("\x1b", "\x07"):
        assert control not in out, repr(out)


def one_skip(result: subprocess.CompletedProcess[str], name: str) -> str:
    """Exactly one line reports the bad record, naming it; returns that line."""
    lines = [ln for ln in result.stderr.splitlines() if "bad fleet record" in ln]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"spa-version: skipped a bad fleet record {name}: "), lines[0]
    return lines[0]


GOOD = "good-host:4242"


def seed(backend: Backend, case_name: str, raw: bytes) -> int:
    """A release, one good process (no build: never waited for) and the bad record; the epoch."""
    epoch = json.loads(run_cli("bump", "v1", "--json", env=backend.env).stdout)["epoch"]
    good = FleetRecord(host="good-host", pid=4242, updated_at=time.time(), ttl=60.0, epoch=epoch, label="v1")
    backend.write(GOOD, good.to_json().encode())
    backend.write(case_name, raw)
    return int(epoch)


@pytest.mark.redis
@pytest.mark.parametrize(("case", "name", "raw"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_status_skips_a_corrupt_record_in_one_line(
    backend: Backend, case: str, name: str, raw: bytes
) -> None:
    """``status`` and ``status --json``: exit 0, the good process shown, the bad one reported
    once and escaped, the store unchanged."""
    seed(backend, name, raw)
    before = backend.snapshot()
    table = run_cli("status", env=backend.env)
    assert table.returncode == 0, table.stderr
    clean(table)
    one_skip(table, backend.stored_name(name))
    assert "good-host:4242" in table.stdout and "bad:1" not in table.stdout
    as_json = run_cli("status", "--json", env=backend.env)
    assert as_json.returncode == 0, as_json.stderr
    clean(as_json)
    one_skip(as_json, backend.stored_name(name))
    assert [p["name"] for p in json.loads(as_json.stdout)["processes"]] == [GOOD]
    assert backend.snapshot() == before, "status changed the store"


@pytest.mark.redis
@pytest.mark.parametrize("flag", ["--wait", "--wait-pinned"])
@pytest.mark.parametrize(("case", "name", "raw"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_bump_wait_skips_a_corrupt_record_in_one_line(
    backend: Backend, case: str, name: str, raw: bytes, flag: str
) -> None:
    """``bump --wait`` / ``--wait-pinned``: the bump is made, the wait ends (exit 0), the bad
    record is reported once however often the fleet is read."""
    epoch = seed(backend, name, raw)
    result = run_cli("bump", "v2", flag, "--timeout", "5", env=backend.env)
    assert result.returncode == 0, result.stderr
    clean(result)
    one_skip(result, backend.stored_name(name))
    assert "nothing to drain" in result.stderr
    history = json.loads(run_cli("history", "--json", env=backend.env).stdout)
    assert [r["label"] for r in history] == ["v2", "v1"] and history[0]["epoch"] > epoch


def forged(epoch: int) -> bytes:
    return json.dumps(record(host="forged", pid=666, epoch=epoch, label="v1")).encode()


@pytest.mark.redis
@pytest.mark.parametrize("claim", [MAX_EPOCH - 1, MAX_EPOCH, "two-days"])
def test_a_forged_epoch_beyond_the_bound_is_ignored(backend: Backend, claim: int | str) -> None:
    """A valid record claiming an epoch more than a day past the store and the clock: every
    bump works, its epoch stays on the clock, and each says so in one line."""
    backend.write(
        "forged:666", forged(clock_epoch() + 2 * FLOOR_BOUND_MS if claim == "two-days" else int(claim))
    )
    for label in ("v1", "v2", "v3"):
        start = clock_epoch()
        result = run_cli("bump", label, "--json", env=backend.env)
        assert result.returncode == 0, result.stderr
        clean(result)
        epoch = json.loads(result.stdout)["epoch"]
        assert start <= epoch <= clock_epoch() + 1000, "the clock, not the forged floor"
        warnings = [ln for ln in result.stderr.splitlines() if "ignored the epoch" in ln]
        assert len(warnings) == 1 and "forged:666" in warnings[0], result.stderr
        assert 'docs/redis.md, "A forged fleet record"' in warnings[0]


@pytest.mark.redis
def test_a_forged_epoch_within_the_bound_lifts_a_bump_by_at_most_the_bound(backend: Backend) -> None:
    """Forging within the bound at every bump moves the epoch at most `FLOOR_BOUND_MS` per
    bump past the counter and the clock: far from the 15-digit end, and bumps keep working."""
    counter = 0
    for label in ("v1", "v2", "v3", "v4"):
        claim = max(counter, clock_epoch()) + FLOOR_BOUND_MS - 1000
        backend.write("forged:666", forged(claim))
        start = clock_epoch()
        result = run_cli("bump", label, "--json", env=backend.env)
        assert result.returncode == 0, result.stderr
        clean(result)
        epoch = json.loads(result.stdout)["epoch"]
        assert epoch == claim + 1, "a claim within the bound is trusted (the store-loss floor)"
        assert epoch <= max(counter, start) + FLOOR_BOUND_MS + 1
        counter = epoch
    assert counter < clock_epoch() + 5 * FLOOR_BOUND_MS


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for FLUSHALL."""
    with redis_server() as server:
        yield server


@pytest.mark.redis
async def test_after_flushall_a_bump_before_the_next_heartbeat_relies_on_the_clock(
    private_redis: RedisServer, app_name: str
) -> None:
    """The documented window (docs/protocol.md, "Epochs"): FLUSHALL takes the heartbeats too,
    so a bump before the processes' next heartbeat has no floor; its epoch comes from the
    clock alone, below what a host whose clock ran ahead had issued. The first bump after
    the next heartbeat exceeds it again, and says so."""
    env = {"SPA_VERSION_URL": private_redis.url, "SPA_VERSION_APP": app_name}
    store = open_store(private_redis.url, app=app_name)
    store.clock = lambda: clock_epoch() + 3_600_000  # type: ignore[method-assign]
    try:
        served = (await store.bump("v1")).release.epoch  # from a deploy host an hour ahead
    finally:
        await store.aclose()
    admin = sync_redis.Redis(port=private_redis.port, socket_timeout=5)
    heartbeat = FleetRecord(host="web", pid=7, updated_at=time.time(), ttl=60.0, epoch=served, label="v1")

    def beat() -> None:
        with admin.pipeline(transaction=True) as pipe:
            pipe.set(f"spa-version:{{{app_name}}}:proc:web:7", heartbeat.to_json(), ex=60)
            pipe.sadd(f"spa-version:{{{app_name}}}:fleet", "web:7")
            pipe.execute()

    try:
        beat()
        admin.flushall()
        early = run_cli("bump", "v2", "--json", env=env)
        assert early.returncode == 0 and early.stderr == "", early.stderr
        assert json.loads(early.stdout)["epoch"] < served, "inside the window: the clock alone"
        beat()  # the process's next heartbeat: it still serves what it held
        later = run_cli("bump", "v3", "--json", env=env)
        assert later.returncode == 0, later.stderr
        assert json.loads(later.stdout)["epoch"] == served + 1
        assert f"processes report serving epoch {served}, newer than the store's" in later.stderr
        assert later.stderr.count("\n") == 1
    finally:
        admin.close()
