"""Every store: bump, get, history, rollback, listen, and bad values in the store."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_version.protocol import format_header
from spa_version.release import InvalidRelease, Release
from spa_version.stores import SCHEMES, Store, StoreError, StoreUrl, open_store, open_url, parse_url
from spa_version.stores.base import HISTORY_LIMIT, clock_epoch
from spa_version.stores.redis import RedisStore
from spa_version.stores.urls import RedisQuery, RedisUrl
from tests.support.epochs import freeze_clock
from tests.support.servers import RedisServer, ServerProcess, async_wait_for, run_cli


@pytest.fixture(params=["memory", "file", "redis", "redis-unix"])
async def store(request: pytest.FixtureRequest, app_name: str, tmp_path: Path) -> AsyncIterator[Store]:
    """The same contract, tested on each kind of store (Redis over TCP and a Unix socket)."""
    if request.param == "memory":
        url = f"memory://{app_name}"
    elif request.param == "file":
        url = f"file://{tmp_path}/store"
    else:
        redis: RedisServer = request.getfixturevalue("redis")
        url = redis.unix_url if request.param == "redis-unix" else redis.url
    opened = open_store(url, app=app_name)
    yield opened
    await opened.aclose()


async def test_empty_store(store: Store) -> None:
    """Before the first bump there is no release and no history."""
    assert await store.get() is None
    assert await store.history() == []


async def test_bump_increments_epoch_and_keeps_fields(store: Store) -> None:
    """Each bump gets a greater epoch, at least the clock in ms, and stores what it was given."""
    before = clock_epoch()
    first = await store.bump("v1")
    second = await store.bump("v2", policy="prompt", min_compatible=first.release.epoch, note="new API")
    assert before <= first.release.epoch < second.release.epoch
    current = await store.get()
    assert current == second.release
    assert (current.label, current.policy, current.min_compatible, current.note) == (
        "v2",
        "prompt",
        first.release.epoch,
        "new API",
    )
    assert current.created_at.endswith("Z")


async def test_a_cutoff_is_carried_by_every_store(store: Store) -> None:
    """``bump(cutoff=True)`` (``bump --cutoff``) is in the record, its history and what a
    listener reads; a non-bool is refused before anything is written."""
    with pytest.raises(InvalidRelease, match="invalid cutoff"):
        await store.bump("v0", cutoff="yes")  # type: ignore[arg-type]
    assert await store.get() is None
    plain = (await store.bump("v1")).release
    cut = (await store.bump("v2", cutoff=True)).release
    assert (plain.cutoff, cut.cutoff) == (False, True)
    current = await store.get()
    assert current is not None and current.cutoff and current.epoch == cut.epoch
    assert [r.cutoff for r in await store.history()] == [True, False]


async def test_min_compatible_current_means_this_release(store: Store) -> None:
    """--min-compatible current pins min_compatible to the epoch being created."""
    first = await store.bump("v1")
    result = await store.bump("v2", min_compatible="current")
    assert result.release.min_compatible == result.release.epoch > first.release.epoch


async def test_min_compatible_newer_than_release_is_refused(store: Store) -> None:
    """A min_compatible beyond the new epoch would lock every client out: refused, store untouched."""
    frozen = freeze_clock(store)  # so the counter alone picks the next epochs: frozen + 1, ...
    assert (await store.bump("v1")).release.epoch == frozen
    with pytest.raises(InvalidRelease):
        await store.bump("v2", min_compatible=frozen + 5)
    assert (await store.get()).label == "v1"  # type: ignore[union-attr]
    assert (await store.bump("v3")).release.epoch == frozen + 1  # the refused bump took no epoch


@pytest.mark.parametrize("label", ["bad label", "v1\r\nX: y", "v\x00", "x" * 65, ""])
async def test_bad_label_leaves_store_untouched(store: Store, label: str) -> None:
    """A bad label raises before anything is written."""
    await store.bump("good")
    with pytest.raises(InvalidRelease):
        await store.bump(label)
    assert [r.label for r in await store.history()] == ["good"]


async def test_history_is_bounded_and_newest_first(store: Store) -> None:
    """History keeps the last HISTORY_LIMIT releases, newest first."""
    epochs = [(await store.bump(f"v{i + 1}")).release.epoch for i in range(HISTORY_LIMIT + 5)]
    history = await store.history(HISTORY_LIMIT + 10)
    assert len(history) == HISTORY_LIMIT
    assert [r.epoch for r in history] == epochs[::-1][:HISTORY_LIMIT]
    assert [r.label for r in history][:2] == [f"v{HISTORY_LIMIT + 5}", f"v{HISTORY_LIMIT + 4}"]
    assert [r.epoch for r in await store.history(3)] == epochs[:-4:-1]


async def test_rollback_is_a_bump_to_an_older_label(store: Store) -> None:
    """rollback gets a new epoch with the previous (or the chosen) release's label and policy."""
    first = (await store.bump("v1", policy="silent")).release
    await store.bump("v2")
    third = (await store.bump("v3")).release
    back = (await store.rollback()).release
    assert back.epoch > third.epoch and back.label == "v2"
    again = (await store.rollback(to=first.epoch)).release
    assert again.epoch > back.epoch and (again.label, again.policy) == ("v1", "silent")
    assert again.note == f"rollback to epoch {first.epoch}"
    with pytest.raises(InvalidRelease):
        await store.rollback(to=again.epoch + 1)  # an epoch this store never issued


async def test_rollback_needs_a_previous_release(store: Store) -> None:
    """With a single release there is nothing to roll back to."""
    await store.bump("only")
    with pytest.raises(InvalidRelease):
        await store.rollback()


async def test_apps_are_namespaced(store: Store) -> None:
    """Two apps in the same store never see each other's releases."""
    other = open_store(store.display_url, app=store.app + "-other")  # no passwords in tests
    try:
        await store.bump("mine")
        assert await other.get() is None
        await other.bump("theirs")
        assert (await store.get()).label == "mine"  # type: ignore[union-attr]
    finally:
        await other.aclose()


async def test_listen_reads_first_then_follows_bumps(store: Store) -> None:
    """listen reports the current record at once, then each bump."""
    first = await store.bump("v1")
    seen: list[tuple[int, bool]] = []

    def on_release(release: Release | None, resync: bool) -> None:
        if release is not None:
            seen.append((release.epoch, resync))

    task = asyncio.create_task(store.listen(on_release, 60.0))
    try:
        await async_wait_for(lambda: (first.release.epoch, True) in seen)
        second = await store.bump("v2")
        await async_wait_for(lambda: any(epoch == second.release.epoch for epoch, _ in seen), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_concurrent_bumps_get_distinct_epochs(store: Store) -> None:
    """Bumps racing each other never share an epoch (the increment is atomic)."""
    frozen = freeze_clock(store)  # every epoch then comes from the counter: none skipped, none twice
    results = await asyncio.gather(*(store.bump(f"v{i}") for i in range(20)))
    epochs = sorted(r.release.epoch for r in results)
    assert epochs == list(range(frozen, frozen + 20))
    assert (await store.get()).epoch == frozen + 19  # type: ignore[union-attr]


# -- bad values written straight into the store -------------------------------------


async def test_redis_garbage_current_is_reported_and_ignored_by_listen(
    redis: RedisServer, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A garbage record in Redis makes get() raise InvalidRelease and listen() skip it with a warning."""
    store = open_store(redis.url, app=app_name)
    try:
        await store.bump("v1")
        redis.command("LPUSH", f"spa-version:{{{app_name}}}:history", "v2\r\nX-Evil: 1")
        with pytest.raises(InvalidRelease):
            await store.get()
        seen: list[Release | None] = []
        caplog.set_level(logging.WARNING, "spa_version")
        task = asyncio.create_task(store.listen(lambda r, _: seen.append(r), 60.0))
        try:
            await async_wait_for(lambda: "bad current record" in caplog.text)
            redis.command("PUBLISH", f"spa-version:{{{app_name}}}:bump", "{not json")
            await async_wait_for(lambda: "bad bump message" in caplog.text)
            assert seen == []
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await store.aclose()


async def test_redis_floors_the_epoch_with_its_own_clock(redis: RedisServer, app_name: str) -> None:
    """A deploy host whose clock lags (here: stopped at 1 ms) still gets an epoch from Redis' TIME."""
    store = open_store(redis.url, app=app_name)
    try:
        store.clock = lambda: 1
        before = clock_epoch()  # the same host's clock, read before Redis reads TIME
        assert (await store.bump("v1")).release.epoch >= before
    finally:
        await store.aclose()


async def test_file_garbage_is_refused_for_bump(tmp_path: Path, app_name: str) -> None:
    """A corrupt file is not silently overwritten by a bump (its epoch counter would be lost)."""
    store = open_store(f"file://{tmp_path}", app=app_name)
    (tmp_path / f"{app_name}.json").write_text("{corrupt")
    with pytest.raises(InvalidRelease):
        await store.get()
    with pytest.raises(StoreError):
        await store.bump("v1")
    assert (tmp_path / f"{app_name}.json").read_text() == "{corrupt"


async def test_file_writes_are_atomic_documents(tmp_path: Path, app_name: str) -> None:
    """The file holds one JSON document with the epoch counter and history, and no temp files remain."""
    store = open_store(f"file://{tmp_path}", app=app_name)
    await store.bump("v1")
    second = await store.bump("v2")
    doc = json.loads((tmp_path / f"{app_name}.json").read_text())
    assert doc["epoch"] == second.release.epoch
    assert [r["label"] for r in doc["history"]] == ["v2", "v1"]
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_scheme_is_a_clear_error() -> None:
    """open_store names the supported schemes when given another."""
    with pytest.raises(ValueError, match="redis://"):
        open_store("postgres://x", app="a")
    with pytest.raises(ValueError, match="no scheme"):
        open_store("localhost:6379", app="a")


def test_bad_app_name_is_refused() -> None:
    """App names become key parts and file names, so they are validated."""
    with pytest.raises(InvalidRelease):
        open_store("memory://", app="../../etc/passwd")


async def test_memory_bump_from_another_thread_reaches_the_listener_loop(app_name: str) -> None:
    """A bump made in another thread is delivered on the listener's own event loop."""
    import threading

    store = open_store(f"memory://{app_name}", app=app_name)
    delivered: list[tuple[int, int]] = []
    reads: list[bool] = []

    def on_release(release: Release | None, resync: bool) -> None:
        reads.append(resync)
        if release is not None and not resync:
            delivered.append((release.epoch, threading.get_ident()))

    task = asyncio.create_task(store.listen(on_release, 60.0))
    try:
        await async_wait_for(lambda: reads, timeout=5)  # registered: it has read once
        bumped = await asyncio.to_thread(asyncio.run, store.bump("v1"))
        await async_wait_for(lambda: delivered, timeout=5)
        assert delivered == [(bumped.release.epoch, threading.get_ident())]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- Redis over a Unix socket, from the CLI to a worker ------------------------------


def test_unix_socket_url_from_the_cli_to_a_worker(redis: RedisServer, app_name: str) -> None:
    """``unix:///path/redis.sock`` works end to end: the CLI bumps through it, a uvicorn
    worker follows it and stamps each release as the bump publishes it (redis-py 8.2 and
    later accept only the literal ``unix://`` prefix, so the URL must reach it whole)."""
    env = {"SPA_VERSION_URL": redis.unix_url, "SPA_VERSION_APP": app_name}
    first = run_cli("bump", "unix-1", "--json", env=env)
    assert first.returncode == 0, first.stderr
    with ServerProcess("uvicorn", env) as worker:
        worker.wait_serving(format_header(Release.from_dict(json.loads(first.stdout))))
        second = run_cli("bump", "unix-2", "--json", env=env)
        assert second.returncode == 0, second.stderr
        worker.wait_serving(format_header(Release.from_dict(json.loads(second.stdout))))
    shown = run_cli("get", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "unix-2" in shown.stdout


def test_a_file_store_behind_a_dangling_symlink_is_one_line(tmp_path: Path, app_name: str) -> None:
    """A store path through a symlink to nowhere (``current`` pointing at a deleted
    release): the bump fails in one line, exit 1, and the error names the path."""
    (tmp_path / "current").symlink_to(tmp_path / "deleted-release")
    env = {"SPA_VERSION_URL": f"file://{tmp_path}/current/store", "SPA_VERSION_APP": app_name}
    result = run_cli("bump", "x", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{tmp_path}/current/store" in result.stderr


async def test_a_parsed_url_opens_without_the_environment(
    redis: RedisServer, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`parse_url` takes a Redis URL apart once (its parts, our query options and
    redis-py's); `open_url` opens that value as it is: environment variables naming
    another store and app change nothing, and the store works against a real Redis."""
    parsed = parse_url(redis.url + "?ping_interval=2&socket_timeout=3")
    assert isinstance(parsed.redis, RedisUrl) and isinstance(parsed.query, RedisQuery)
    assert parsed.query.own == {"ping_interval": 2.0}
    assert dict(parsed.query.client) == {"socket_timeout": 3.0}
    monkeypatch.setenv("SPA_VERSION_URL", "memory://elsewhere")
    monkeypatch.setenv("SPA_VERSION_APP", "another-app")
    store = open_url(parsed, app=app_name)
    other = open_store(redis.url, app=app_name)  # the same Redis, opened from text
    try:
        assert isinstance(store, RedisStore)
        assert (store.app, store.ping_interval, store.socket_timeout) == (app_name, 2.0, 3.0)
        bumped = await store.bump("parsed-1")
        assert await other.get() == bumped.release
    finally:
        await store.aclose()
        await other.aclose()


def _callers(name: str) -> set[str]:
    """``module path:function`` of every function in src/ that calls *name*."""
    package = Path(__file__).resolve().parents[2] / "src" / "spa_version"
    found = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    called = node.func
                    called_name = called.id if isinstance(called, ast.Name) else getattr(called, "attr", None)
                    if called_name == name:
                        found.add(f"{path.relative_to(package).as_posix()}:{function.name}")
    return found


def test_a_store_url_is_taken_apart_in_one_place() -> None:
    """One route for a store URL: only `parse_url` parses a Redis URL and splits its
    query (a URL is parsed once, whoever opens it), and only the options' check and the
    public `open_store` call `parse_url`; the stores take its `StoreUrl`."""
    assert _callers("parse_redis_url") == {"stores/__init__.py:parse_url"}
    assert _callers("split_query") == {"stores/__init__.py:parse_url"}
    assert _callers("parse_url") == {"options.py:_parse_store", "stores/__init__.py:open_store"}
    assert _callers("environment") == {"options.py:_build", "stores/__init__.py:open_store"} | {
        "deploy/agent.py:run_agent"
    }


_ANY_URL = st.one_of(
    st.text(max_size=60),
    st.builds("{}://{}".format, st.sampled_from(sorted(SCHEMES)), st.text(max_size=60)),
)


# No deadline: the machine running the tests may be loaded (tests/test_protocol_properties.py).
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(_ANY_URL)
def test_parse_url_gives_a_store_url_or_a_value_error(text: str) -> None:
    """Whatever the text, `parse_url` returns a `StoreUrl` of a known scheme or raises
    ValueError (a message for the user), never anything else."""
    try:
        parsed = parse_url(text)
    except ValueError:
        return
    assert isinstance(parsed, StoreUrl) and parsed.scheme in SCHEMES and parsed.text == text


@relaxed
@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    port=st.integers(0, 65535),
    db=st.none() | st.integers(0, 10**9 - 1),
    secret=st.text(min_size=1, max_size=20),
    ping=st.floats(min_value=1e-3, max_value=1e6),
)
def test_a_redis_url_is_taken_apart_once_into_its_parts(
    host: str, port: int, db: int | None, secret: str, ping: float
) -> None:
    """A Redis URL gives back its host, port, database, password and query options, each
    in its typed place; the password is never in the value's repr."""
    password = "sekrit" + secret
    path = "" if db is None else str(db)
    query = f"ping_interval={ping!r}&socket_timeout=2"
    url = f"redis://user:{quote(password, safe='')}@{host}:{port}/{path}?{query}"
    parsed = parse_url(url)
    assert parsed.redis is not None and parsed.query is not None
    assert (parsed.redis.hosts, parsed.redis.db) == (((host, port),), db)
    assert (parsed.redis.username, parsed.redis.password) == ("user", password)
    assert parsed.query.own == {"ping_interval": ping}
    assert dict(parsed.query.client) == {"socket_timeout": 2.0}
    assert "sekrit" not in repr(parsed)
