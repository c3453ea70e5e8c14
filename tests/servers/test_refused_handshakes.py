"""Refused websocket handshakes make no error noise in uvicorn's log (docs/servers.md,
"Refused handshakes and error trackers").

The middleware refuses a handshake in two cases: a stale client (``min_compatible``: 409)
and a stale process (a build the store has moved past: 503). Both answer with the ASGI
websocket denial response. uvicorn, as a real process with each of its websocket
implementations, must log them as the INFO lines a refusal is, never at ERROR level:
anything that forwards ``uvicorn.error`` at ERROR (Sentry's logging integration, an
alert on log levels) would fire once per refused tab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from spa_version.protocol import format_header
from spa_version.release import Release
from tests.support.servers import ServerProcess, async_wait_for, run_cli

pytestmark = pytest.mark.slow

#: uvicorn's own websocket implementations (`--ws`); "auto" is what a user gets by default.
WS = ["auto", "websockets-sansio", "wsproto"]


def _bump(env: dict[str, str], label: str, *args: str) -> Release:
    result = run_cli("bump", label, "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return Release.from_dict({k: v for k, v in json.loads(result.stdout).items() if k != "receivers"})


async def _refused(url: str) -> int:
    """Open a websocket that the server must refuse; return the HTTP status it answered."""
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, open_timeout=10):
            pass
    return refused.value.response.status_code


@pytest.mark.parametrize("ws", WS)
async def test_refusals_are_logged_at_info_not_error(ws: str, tmp_path: Path) -> None:
    """A stale client's 409 and a stale process's 503, each refused twice: INFO lines, no ERROR."""
    env = {"SPA_VERSION_URL": f"file://{tmp_path}", "SPA_VERSION_APP": "refusals", "SPA_VERSION_BUILD": "A"}
    first = _bump(env, "A")
    with ServerProcess("uvicorn", env, "tests.servers.apps:app", "--ws", ws) as server:
        server.wait_serving(format_header(first))
        enforced = _bump(env, "A", "--min-compatible", "current")  # same build: still serving
        server.wait_serving(format_header(enforced))
        stale_client = f"{server.ws_url}/ws?spa-client-version={first.epoch}"
        assert [await _refused(stale_client) for _ in range(2)] == [409, 409]

        moved_on = _bump(env, "B")  # this process (build A) is stale now
        server.wait_serving(format_header(moved_on))
        assert [await _refused(f"{server.ws_url}/ws") for _ in range(2)] == [503, 503]

        await async_wait_for(lambda: server.output().count('"WebSocket /ws') >= 4, timeout=10)
        output = server.output()
    assert output.count('"WebSocket /ws?spa-client-version') == 2, output
    assert not [line for line in output.splitlines() if line.startswith("ERROR")], output
    assert "without completing handshake" not in output, output
