"""Django under a real WSGI server and a real Redis: bumps arrive without a restart, also after fork."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import override_settings

from spa_version.django.listener_thread import listener_thread, stop_listener_thread
from tests.support.servers import RedisServer, free_port, redis_server, run_cli, wait_for

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_url() -> Iterator[str]:
    """Django's WSGI application behind wsgiref, a real WSGI server, in a thread."""
    server: WSGIServer = make_server(
        "127.0.0.1", free_port(), get_wsgi_application(), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        stop_listener_thread()


def version_of(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=10) as response:
        value: str | None = response.headers.get("X-SPA-Version")
        return value


def test_wsgi_picks_up_redis_bumps_without_restart(redis: RedisServer, app_name: str, wsgi_url: str) -> None:
    """Each `spa-version bump` reaches the running WSGI process through Redis pub/sub. Before
    the first, the process stamps the unreleased value (docs/protocol.md, "Before the first
    release"), with its declared build as label, and the endpoint answers that record, while
    ``get`` still says there is no release."""
    settings = {"URL": redis.url, "APP": app_name, "BUILD": "wsgi-1"}
    with override_settings(SPA_VERSION=settings):
        unreleased = "0; label=wsgi-1; policy=next-navigation"
        with urllib.request.urlopen(wsgi_url + "/", timeout=10) as page:
            assert page.headers.get("X-SPA-Version") == unreleased
            assert page.headers.get("Server-Timing") == f'spa-version;desc="{unreleased}"'
        with urllib.request.urlopen(wsgi_url + "/__spa-version", timeout=10) as response:
            assert response.headers.get("X-SPA-Version") == unreleased
            assert json.loads(response.read())["epoch"] == 0
        got = run_cli("--url", redis.url, "--app", app_name, "get", "--json")
        assert got.returncode == 0 and json.loads(got.stdout) is None, got.stderr
        epochs = []
        for n in (1, 2):
            bumped = run_cli("--url", redis.url, "--app", app_name, "bump", "--json", f"wsgi-{n}")
            assert bumped.returncode == 0, bumped.stderr
            epochs.append(json.loads(bumped.stdout)["epoch"])
            wanted = f"{epochs[-1]}; label=wsgi-{n};"
            wait_for(lambda w=wanted: (v := version_of(wsgi_url + "/")) is not None and v.startswith(w))
        assert epochs[0] < epochs[1]
        # One thread per process, whatever the number of requests served.
        names = [t.name for t in threading.enumerate()]
        assert names.count("spa-version listener") == 1


def test_wsgi_serves_while_redis_is_down(app_name: str, wsgi_url: str) -> None:
    """A store that cannot be reached never turns into an error: responses go out unstamped."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with (
        override_settings(SPA_VERSION={"URL": dead, "APP": app_name, "STARTUP_TIMEOUT": 0.2}),
        urllib.request.urlopen(wsgi_url + "/", timeout=10) as response,
    ):
        assert response.status == 200
        assert response.headers.get("X-SPA-Version") is None


def test_listener_thread_stops_cleanly(redis: RedisServer, app_name: str) -> None:
    """stop_listener_thread cancels the listener, closes the store and ends the thread."""
    from spa_version.django.conf import settings_host

    with override_settings(SPA_VERSION={"URL": redis.url, "APP": app_name}):
        host = settings_host()
        thread = listener_thread()
        thread.serve(host)
        assert host.synced.is_set()
        follower = host.follower
        assert thread.running and follower is not None
        stop_listener_thread()
        assert not thread.running
        assert host.follower is None
        assert follower.task is not None and follower.task.done()


def test_a_host_released_just_before_the_stop_closes_its_store_first(app_name: str) -> None:
    """Settings replaced (``override_settings`` left) release their host: its fleet record,
    listener and store are closed on the thread, unawaited. A stop right after waits for
    that, so no connection to Redis outlives the thread's event loop (it would be an
    unclosed socket found by the garbage collector, in whatever code runs then)."""
    import redis as redis_py

    from spa_version.django.conf import settings_host

    with redis_server() as private, redis_py.Redis(port=private.port, decode_responses=True) as admin:
        own = admin.client_id()

        def others() -> list[str]:
            return [str(c["addr"]) for c in admin.client_list() if int(c["id"]) != own]

        with override_settings(SPA_VERSION={"URL": private.url, "APP": app_name, "BUILD": "A"}):
            host = settings_host()
            listener_thread().serve(host)
            assert host.synced.is_set()
            follower = host.follower
            assert follower is not None
            wait_for(lambda: admin.keys(f"spa-version:{{{app_name}}}:proc:*"), timeout=10)
            # Writes wait for a second: the release's removal of the record is still
            # running when the stop comes.
            admin.client_pause(1000, all=False)
        stop_listener_thread()
        assert follower.task is not None and follower.task.done()
        wait_for(lambda: others() == [], timeout=5, message=lambda: f"still connected: {others()}")


FORK_SCRIPT = r"""
import asyncio, json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django.settings"
import django
django.setup()
from django.conf import settings
from django.test import Client
from spa_version.django.listener_thread import listener_thread
from spa_version.stores import open_store
from tests.support.servers import wait_for

url, app, before = sys.argv[1], sys.argv[2], int(sys.argv[3])  # before: the epoch of "before-fork"
settings.SPA_VERSION = {"URL": url, "APP": app}
client = Client()

def version():
    return client.get("/").headers.get("X-SPA-Version")

# The parent serves a request first: its listener thread starts before the fork,
# as with gunicorn --preload plus a warm-up request.
assert version().startswith(f"{before}; label=before-fork;"), version()
parent_thread = listener_thread()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    report = {"inherited_alive": parent_thread.running}
    report["first"] = version()
    report["new_instance"] = listener_thread() is not parent_thread and listener_thread().pid == os.getpid()
    report["running"] = listener_thread().running
    report["after_epoch"] = asyncio.run(open_store(url, app=app).bump("after-fork")).release.epoch
    report["after_bump"] = wait_for(lambda: (v := version()) and "after-fork" in v and v)
    os.write(write, json.dumps(report).encode())
    os._exit(0)
os.close(write)
_, status = os.waitpid(pid, 0)
child = json.loads(os.read(read, 65536))
parent_after = wait_for(lambda: (v := version()) and "after-fork" in v and v)
print(json.dumps({"child": child, "status": status, "parent_after": parent_after}))
"""


def test_fork_gives_the_child_its_own_listener(redis: RedisServer, app_name: str) -> None:
    """After fork the child starts its own listener thread and follows bumps; so does the parent."""
    bumped = run_cli("--url", redis.url, "--app", app_name, "bump", "--json", "before-fork")
    assert bumped.returncode == 0, bumped.stderr
    before = json.loads(bumped.stdout)["epoch"]
    done = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, redis.url, app_name, str(before)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    child = report["child"]
    assert report["status"] == 0
    assert child["inherited_alive"] is False  # threads do not survive fork()...
    assert child["first"].startswith(f"{before}; label=before-fork")
    assert child["new_instance"] is True and child["running"] is True  # ...so the child starts its own
    after = child["after_epoch"]
    assert after > before
    assert child["after_bump"].startswith(f"{after}; label=after-fork")
    assert report["parent_after"].startswith(f"{after}; label=after-fork")
