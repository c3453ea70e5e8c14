"""Before the first bump, on a real server process: the unreleased value (docs/protocol.md,
"Before the first release").

uvicorn runs `VersionMiddleware` (tests/servers/apps.py) on a file store that holds no
release yet, with a declared build. Every response carries epoch 0 labelled with that
build, the endpoint answers that record, and the rest of the product still sees "no
release yet": ``get``, ``status`` and the process's own fleet record. The first bump then
replaces it like any release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spa_version.protocol import format_header, parse_header
from spa_version.release import Release
from tests.support.servers import ServerProcess, run_cli, wait_for

pytestmark = pytest.mark.slow

UNRELEASED = "0; label=A; policy=next-navigation"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "SPA_VERSION_URL": f"file://{tmp_path}/store",
        "SPA_VERSION_APP": "unreleased",
        "SPA_VERSION_BUILD": "A",
    }


def _status(env: dict[str, str]) -> list[dict[str, object]]:
    result = run_cli("status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    processes: list[dict[str, object]] = json.loads(result.stdout)["processes"]
    return processes


def test_before_the_first_bump_uvicorn_stamps_epoch_0_and_the_first_bump_replaces_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with ServerProcess("uvicorn", env) as server:
        server.wait_serving(UNRELEASED)
        response = server.get("/")
        assert response is not None and response.status_code == 200 and response.text == "ok"
        assert response.headers.get_list("server-timing") == [f'spa-version;desc="{UNRELEASED}"']
        assert parse_header(response.headers["x-spa-version"]).epoch == 0

        endpoint = server.get("/__spa-version")
        assert endpoint is not None and endpoint.status_code == 200
        assert endpoint.headers["x-spa-version"] == UNRELEASED
        assert endpoint.json() == {
            "epoch": 0,
            "label": "A",
            "policy": "next-navigation",
            "min_compatible": None,
            "created_at": "",
            "note": None,
        }

        # The store and the deploy switch: still no release.
        got = run_cli("get", env=env)
        assert got.returncode == 0, got.stderr
        assert "has no release" in got.stdout
        assert json.loads(run_cli("get", "--json", env=env).stdout) is None
        processes = wait_for(lambda: _status(env), timeout=15)
        seen = [(p["build"], p["epoch"], p["label"], p["state"]) for p in processes]
        assert seen == [("A", None, None, "live")]

        bumped = run_cli("bump", "A", "--json", env=env)
        assert bumped.returncode == 0, bumped.stderr
        first = Release.from_dict({k: v for k, v in json.loads(bumped.stdout).items() if k != "receivers"})
        server.wait_serving(format_header(first))
        endpoint = server.get("/__spa-version")
        assert endpoint is not None and endpoint.json()["epoch"] == first.epoch >= 1
        after = server.get("/")
        assert after is not None
        assert after.headers.get_list("server-timing") == [f'spa-version;desc="{format_header(first)}"']
        wait_for(lambda: [p["epoch"] for p in _status(env)] == [first.epoch], timeout=15)
