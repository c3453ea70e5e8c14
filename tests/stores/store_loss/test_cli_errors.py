"""Bad store data, a full disk, a paused Redis: one line from the real CLI, its exit code, nothing changed.

Exit codes (``spa-version --help``, README): 1 when the store is unreachable, refuses,
or holds data that is not valid; the store is never written to then.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from tests.support.servers import RedisServer, cli_command, run_cli
from tests.support.store_loss import redis_dump

GOOD = {"epoch": 5, "label": "v5", "policy": "next-navigation", "created_at": "2026-11-30T00:00:00Z"}

#: Epoch counters no bump may build on: (name, the counter as Redis holds it).
BAD_COUNTERS = [
    ("float", "1.5"),
    ("lua-float", "1e+14"),  # what tostring() of a Lua double writes
    ("inf", "inf"),
    ("16-digits", "1234567890123456"),
    ("text", "abc"),
    ("negative", "-5"),
    ("empty", ""),
]

#: Current records that are not releases: (name, the raw record).
BAD_RECORDS = [
    ("null", "null"),
    ("list", "[1, 2]"),
    ("object", '{"a": 1}'),
    ("epoch-1e400", json.dumps({**GOOD, "epoch": 0}).replace('"epoch": 0', '"epoch": 1e400')),
    ("epoch-16-digits", json.dumps({**GOOD, "epoch": 1234567890123456})),
    ("nested-100000", "[" * 100_000 + "]" * 100_000),
    ("not-json", "{corrupt"),
]


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout[:200], result.stderr[:500])
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr[:500]
    return result.stderr


def commands(record: str) -> list[list[str]]:
    """get and bump for every bad record; rollback and status too for one (they read it the same way)."""
    return [["get"], ["bump", "v6"], *([["rollback"], ["status"]] if record == "null" else [])]


# -- Redis ------------------------------------------------------------------------------------


def redis_env(redis: RedisServer, app: str) -> dict[str, str]:
    return {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app}


@pytest.mark.redis
@pytest.mark.parametrize(("name", "counter"), BAD_COUNTERS, ids=[c[0] for c in BAD_COUNTERS])
def test_redis_bad_counter(redis: RedisServer, app_name: str, name: str, counter: str) -> None:
    """bump fails before writing anything (the Lua script checks the counter as text); get still works."""
    env = redis_env(redis, app_name)
    client = sync_redis.Redis(port=redis.port)
    try:
        client.rpush(f"spa-version:{{{app_name}}}:history", json.dumps(GOOD))
        client.set(f"spa-version:{{{app_name}}}:epoch", counter)
        before = redis_dump(redis, app_name)
        with client.pubsub() as pubsub:
            pubsub.subscribe(f"spa-version:{{{app_name}}}:bump")
            assert pubsub.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
            stderr = one_line_error(run_cli("bump", "v6", env=env), 1)
            assert "not an epoch" in stderr and "nothing was changed" in stderr
            assert pubsub.get_message(timeout=0.2) is None, "nothing was published"
    finally:
        client.close()
    assert redis_dump(redis, app_name) == before
    result = run_cli("--json", "get", env=env)
    assert result.returncode == 0 and json.loads(result.stdout)["epoch"] == 5


@pytest.mark.redis
def test_redis_counter_at_15_digits_refuses_the_16th(redis: RedisServer, app_name: str) -> None:
    """The next epoch would be past 15 digits (JS holds epochs exactly below 2**53): refused, unchanged."""
    env = redis_env(redis, app_name)
    redis.command("SET", f"spa-version:{{{app_name}}}:epoch", "999999999999999")
    before = redis_dump(redis, app_name)
    stderr = one_line_error(run_cli("bump", "v1", env=env), 1)
    assert "15 digits" in stderr and "nothing was changed" in stderr
    assert redis_dump(redis, app_name) == before


@pytest.mark.redis
@pytest.mark.parametrize(("name", "record"), BAD_RECORDS, ids=[r[0] for r in BAD_RECORDS])
def test_redis_bad_current_record(redis: RedisServer, app_name: str, name: str, record: str) -> None:
    """get and bump say in one line that the store's current record is not valid; nothing is written."""
    env = redis_env(redis, app_name)
    client = sync_redis.Redis(port=redis.port)
    try:
        client.set(f"spa-version:{{{app_name}}}:epoch", "5")
        client.rpush(f"spa-version:{{{app_name}}}:history", record, json.dumps({**GOOD, "epoch": 4}))
    finally:
        client.close()
    before = redis_dump(redis, app_name)
    for args in commands(name):
        stderr = one_line_error(run_cli(*args, env=env), 1)
        assert redis.url in stderr and "not valid" in stderr, stderr
    assert redis_dump(redis, app_name) == before


# -- the file store ----------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def file_store(tmp_path: Path, app_name: str) -> tuple[Path, dict[str, str]]:
    """A file store that has seen one real bump (so its fleet directory exists), and its CLI env."""
    directory = tmp_path / "store"
    env = {"SPA_VERSION_URL": f"file://{directory}", "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v0", env=env).returncode == 0
    return directory, env


FILE_COUNTERS = [*BAD_COUNTERS[:1], ("inf", "Infinity"), ("1e400", "1e400"), *BAD_COUNTERS[3:5]]


@pytest.mark.parametrize(("name", "counter"), FILE_COUNTERS, ids=[c[0] for c in FILE_COUNTERS])
def test_file_bad_counter(
    file_store: tuple[Path, dict[str, str]], app_name: str, name: str, counter: str
) -> None:
    directory, env = file_store
    raw = json.dumps({"epoch": 0, "history": [GOOD]}).replace('"epoch": 0', f'"epoch": {counter}', 1)
    if name == "text":
        raw = json.dumps({"epoch": counter, "history": [GOOD]})
    (directory / f"{app_name}.json").write_text(raw)
    before = snapshot(directory)
    stderr = one_line_error(run_cli("bump", "v6", env=env), 1)
    assert "not an epoch" in stderr and "nothing was changed" in stderr
    assert snapshot(directory) == before
    assert json.loads(run_cli("--json", "get", env=env).stdout)["epoch"] == 5


@pytest.mark.parametrize(("name", "record"), BAD_RECORDS, ids=[r[0] for r in BAD_RECORDS])
def test_file_bad_document(
    file_store: tuple[Path, dict[str, str]], app_name: str, name: str, record: str
) -> None:
    """The record as the current release, and (for the unparsable ones) as the whole document."""
    directory, env = file_store
    path = directory / f"{app_name}.json"
    documents = ['{"epoch": 5, "history": [' + record + "]}"]
    if name in ("null", "list", "nested-100000", "not-json"):
        documents.append(record)
    for document in documents:
        path.write_text(document)
        before = snapshot(directory)
        for args in commands(name):
            stderr = one_line_error(run_cli(*args, env=env), 1)
            assert str(directory) in stderr and "not valid" in stderr, stderr
        assert snapshot(directory) == before


# -- a full disk (a real tmpfs: root only) -----------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of our own, mounted for this test (skipped where mount is not allowed)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True, timeout=30)


def fill(directory: Path) -> Path:
    """Write a file until the file system says it is full; return it."""
    filler = directory / "filler"
    # Unbuffered: close() has nothing left to write.
    with filler.open("wb", buffering=0) as f, pytest.raises(OSError) as full:
        for _ in range(100_000):  # bounded: 256 KiB fill long before this
            f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC, full.value
    return filler


def test_file_store_on_a_full_disk(tiny_tmpfs: Path, app_name: str) -> None:
    """No space left: bump says so in one line (exit 1), the document and directory are as before."""
    directory = tiny_tmpfs / "store"
    env = {"SPA_VERSION_URL": f"file://{directory}", "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v1", env=env).returncode == 0
    filler = fill(tiny_tmpfs)
    before = snapshot(directory)
    stderr = one_line_error(run_cli("bump", "v2", env=env), 1)
    assert "No space left on device" in stderr
    assert snapshot(directory) == before, "no temp file left, the document untouched"
    filler.unlink()
    assert run_cli("bump", "v2", env=env).returncode == 0
    assert [r["label"] for r in json.loads(run_cli("--json", "history", env=env).stdout)] == ["v2", "v1"]


# -- a paused Redis ------------------------------------------------------------------------------


@pytest.fixture
def paused_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, SIGSTOPped by the test (and always continued)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                server.proc.send_signal(signal.SIGCONT)
        server.close()


@pytest.mark.redis
def test_paused_redis_did_not_answer(paused_redis: RedisServer, app_name: str) -> None:
    """Reached but silent (SIGSTOP) is told apart from unreachable: "did not answer within 1 s"."""
    env = {"SPA_VERSION_URL": paused_redis.url + "?socket_timeout=1", "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v1", env=env).returncode == 0
    before = redis_dump(paused_redis, app_name)
    assert paused_redis.proc is not None
    paused_redis.proc.send_signal(signal.SIGSTOP)
    try:
        for args in (["get"], ["bump", "v2"]):
            stderr = one_line_error(run_cli(*args, env=env), 1)
            assert "did not answer within 1 s" in stderr and "cannot reach" not in stderr, stderr
    finally:
        paused_redis.proc.send_signal(signal.SIGCONT)
    assert redis_dump(paused_redis, app_name) == before


# -- a deploy host whose clock reads the year 2300 ----------------------------------------------

FAKETIME = shutil.which("faketime")  # Debian's faketime (libfaketime); `make system-deps` installs it


@pytest.mark.redis
@pytest.mark.skipif(FAKETIME is None, reason="needs faketime (make system-deps installs it)")
@pytest.mark.parametrize("command", [["bump", "v1"], ["bump", "v1", "--wait"], ["rollback"], ["status"]])
def test_a_clock_in_the_year_2300_is_one_line_and_writes_nothing(
    redis: RedisServer, app_name: str, file_store: tuple[Path, dict[str, str]], command: list[str]
) -> None:
    """Past 2262-04-11 Python's own clock overflows (even ``import logging`` raises): the CLI
    says so in one line, exit 1, before it reads or writes any store."""
    directory, file_env = file_store
    redis_env = {"SPA_VERSION_URL": redis.url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v0", env=redis_env).returncode == 0
    before = snapshot(directory), redis_dump(redis, app_name)
    for env in (file_env, redis_env):
        result = subprocess.run(
            [str(FAKETIME), "2300-01-01 00:00:00", *cli_command(*command)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        assert "clock reads a time past 2262-04-11" in one_line_error(result, 1)
    assert (snapshot(directory), redis_dump(redis, app_name)) == before
