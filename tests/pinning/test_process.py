"""Pinning, the process side (docs/protocol.md, "Pinning"): the slot in the version header,
the pin header's grammar, and the pinned-request count in the fleet record and status."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from spa_version.options import InvalidOptions, Options
from spa_version.pinning import PinCounter, parse_pin, validate_slot
from spa_version.protocol import format_header, parse_header
from spa_version.stores import open_store
from tests.support.cli import status_json
from tests.support.drain_app import build_middleware
from tests.support.servers import ThreadedUvicorn, free_port, run_cli, wait_for


@pytest.mark.parametrize(
    ("raw", "pin"),
    [
        (b"blue", "blue"),
        (b" blue\t", "blue"),
        (b"blue, blue", "blue"),
        (b"green,blue", "green"),
        (b"b-2.x_Y", "b-2.x_Y"),
        (b"x" * 32, "x" * 32),
        (b"x" * 33, None),
        (b"", None),
        (b",blue", None),
        (b"blue!", None),
        (b"bl ue", None),
        (b"gr\xc3\xbcn", None),
        (b"\xff\xfe", None),
        (b"blue\r\n", None),
    ],
)
def test_a_pin_is_the_first_element_if_it_is_a_slot_token(raw: bytes, pin: str | None) -> None:
    assert parse_pin(raw) == pin


def test_a_declared_slot_must_be_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert validate_slot("blue") == "blue"
    for bad in ("", "blue green", "x" * 33, "grün", "a,b", "a;b"):
        with pytest.raises(ValueError):
            validate_slot(bad)
    monkeypatch.setenv("SPA_VERSION_SLOT", "green")
    assert Options.from_kwargs().slot == "green"
    assert Options.from_kwargs(slot="blue").slot == "blue"
    with pytest.raises(InvalidOptions, match="^slot "):
        Options.from_kwargs(slot="a;b")
    monkeypatch.setenv("SPA_VERSION_SLOT", "blue green")
    with pytest.raises(InvalidOptions, match="^SPA_VERSION_SLOT "):
        Options.from_kwargs()
    monkeypatch.setenv("SPA_VERSION_SLOT", "")
    assert Options.from_kwargs().slot is None


def test_the_counter_counts_only_requests_pinned_to_its_slot() -> None:
    pins = PinCounter("blue")
    for value in (b"blue", b" blue", b"blue, green", b"green", b"nope!", b""):
        pins.count([(b"host", b"x"), (b"x-spa-pin", value)])
    pins.count([(b"host", b"x")])
    assert pins.take() == 3
    assert pins.take() == 0


def test_the_slot_is_stamped_in_the_version_header(tmp_path: Path, app_name: str) -> None:
    """With a slot, every response says `; slot=<slot>` (the parsers ignore it: a header
    they do not know the parameter of still parses); without one, nothing changes."""
    store_url = f"file://{tmp_path}"
    asyncio.run(open_store(store_url, app=app_name).bump("A"))
    with_slot, _ = build_middleware(store_url, app_name=app_name, slot="blue")
    without, _ = build_middleware(store_url, app_name=app_name)
    with ThreadedUvicorn(with_slot) as a, ThreadedUvicorn(without) as b:
        blue = httpx.get(a.url + "/").headers["x-spa-version"]
        plain = httpx.get(b.url + "/").headers["x-spa-version"]
    assert blue == plain + "; slot=blue"
    assert "slot" not in plain
    assert parse_header(blue).epoch == parse_header(plain).epoch


def test_status_shows_the_pinned_requests_per_build(tmp_path: Path, app_name: str) -> None:
    """The heartbeat carries the slot and the requests pinned to it since the last beat;
    ``status`` sums them per build. A request pinned elsewhere, or malformed, is not counted."""
    store_url = f"file://{tmp_path}"
    asyncio.run(open_store(store_url, app=app_name).bump("A"))
    mw, _ = build_middleware(
        store_url, app_name=app_name, slot="blue", agent_port=free_port(), heartbeat_interval=0.3
    )
    env = {"SPA_VERSION_URL": store_url, "SPA_VERSION_APP": app_name}
    with ThreadedUvicorn(mw) as server:
        wait_for(lambda: status_json(env)["processes"], timeout=15, interval=0.1)
        counted = 0
        stop = threading.Event()
        statuses: list[int] = []

        def traffic() -> None:
            # Pinned traffic flows without pause while the CLI reads the fleet: each
            # heartbeat window (0.3 s) counts some, however slow one `status` is.
            with httpx.Client(base_url=server.url) as http:
                while not stop.is_set():
                    for value in ("blue", "blue", "green", "!!"):
                        statuses.append(http.get("/", headers={"X-SPA-Pin": value}).status_code)

        def pinned_seen() -> bool:
            nonlocal counted
            build = status_json(env)["builds"]["A"]
            counted = build.get("pinned", 0)
            return counted > 0 and build["slots"] == ["blue"]

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            wait_for(pinned_seen, timeout=15, interval=0.1)
        finally:
            stop.set()
            sender.join(timeout=30)
        assert statuses and set(statuses) == {200}
        [process] = status_json(env)["processes"]
        assert process["slot"] == "blue"
        table = run_cli("status", env=env).stdout
        assert "SLOT" in table and "PINNED" in table
        # Without pinned requests, the count goes back to 0 at the next beats.
        wait_for(lambda: status_json(env)["builds"]["A"]["pinned"] == 0, timeout=15, interval=0.1)
    assert counted > 0


def test_only_the_live_build_stamps_its_slot(tmp_path: Path, app_name: str) -> None:
    """A tab pins to the build its code came from: a process stamps its slot only while
    its build is the current label. Stale (after a bump) or pending, it serves the current
    release's header without one, so a shell it serves from a shared web directory (the
    new build's) pins nothing and its requests go to the live build; a rollback to its
    build brings the slot back (docs/protocol.md, "Pinning")."""
    store_url = f"file://{tmp_path}"
    store = open_store(store_url, app=app_name)
    asyncio.run(store.bump("A"))
    blue, _ = build_middleware(store_url, app_name=app_name, slot="blue", build="A")
    green, _ = build_middleware(store_url, app_name=app_name, slot="green", build="B")
    with ThreadedUvicorn(blue) as b, ThreadedUvicorn(green) as g:

        def stamps() -> tuple[str, str]:
            return httpx.get(b.url + "/").headers["x-spa-version"], httpx.get(g.url + "/").headers[
                "x-spa-version"
            ]

        first = stamps()
        assert first[0].endswith("; slot=blue") and "slot=" not in first[1]  # green is pending
        release = asyncio.run(store.bump("B")).release
        after = wait_for(lambda: (s := stamps())[0].startswith(f"{release.epoch};") and s, timeout=15)
        assert after == (format_header(release), format_header(release) + "; slot=green")
        back = asyncio.run(store.rollback()).release
        rolled = wait_for(lambda: (s := stamps())[0].startswith(f"{back.epoch};") and s, timeout=15)
        assert rolled == (format_header(back) + "; slot=blue", format_header(back))
