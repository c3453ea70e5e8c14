"""The file store's permission model with two real users (docs/deploy-haproxy.md, "File
store permissions"): the deploy tools run as root with umask 077, as on a hardened host;
the app is a real uvicorn process running as ``nobody``, also with umask 077.

Root only (CI runs as root): only root can start a process as another user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spa_version.protocol import format_header
from spa_version.release import Release
from tests.support.servers import ROOT, ServerProcess, cli_command, wait_for
from tests.support.users import as_user, python_env, python_for

APP_USER = "nobody"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is private to root), owned by
    root, mode 0755: the app's user cannot create anything in it."""
    try:
        pwd.getpwnam(APP_USER)
    except KeyError:
        pytest.skip(f"no user {APP_USER} on this host")
    if python_for(APP_USER) is None:
        pytest.skip(f"no Python interpreter that user {APP_USER} can run imports spa_version")
    path = Path(tempfile.mkdtemp(prefix="spa-version-users-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the deploy user: root, umask 077."""
    return subprocess.run(
        cli_command(*args),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o077,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def processes(env: dict[str, str]) -> list[dict[str, Any]]:
    result = deploy(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)["processes"]
    return found


SETUPS = ["first bump creates it", "made 0755 in advance", "app started first", "a shared group"]


@pytest.mark.parametrize("setup", SETUPS)
def test_the_app_as_another_user_follows_and_reports(base: Path, app_name: str, setup: str) -> None:
    """The app reads every release and its heartbeat shows in ``status``; ``bump --wait``
    sees it; the bump says the process follows the store, with no warning. "A shared
    group": the documented alternative, directories the operator made with the app
    user's group (0750 and 2770), which the store keeps."""
    store = base / "store"
    fleet = store / f"{app_name}.fleet"
    env = {"SPA_VERSION_URL": f"file://{store}", "SPA_VERSION_APP": app_name, "SPA_VERSION_BUILD": "v1"}
    modes = {store: 0o755, fleet: 0o1777}
    if setup == "made 0755 in advance":
        store.mkdir()
        os.chmod(store, 0o755)
    if setup == "a shared group":
        modes = {store: 0o750, fleet: 0o2770}
        for path, path_mode in modes.items():
            path.mkdir()
            os.chown(path, 0, pwd.getpwnam(APP_USER).pw_gid)
            os.chmod(path, path_mode)
    app_first = setup in ("made 0755 in advance", "app started first")
    if not app_first:
        bumped = deploy(env, "--json", "bump", "v1")
    with ServerProcess("uvicorn", env, user=APP_USER, umask=0o077) as app:
        if app_first:
            # Until a bump creates DIR/APP.fleet, this app cannot report (it retries).
            wait_for(lambda: app.get() is not None, timeout=30, interval=0.05)
            bumped = deploy(env, "--json", "bump", "v1")
        assert bumped.returncode == 0, bumped.stderr
        app.wait_serving(format_header(Release.from_dict(json.loads(bumped.stdout))))

        assert app.proc is not None
        [record] = wait_for(lambda: processes(env) or None, timeout=30, interval=0.1)
        assert (record["pid"], record["build"], record["state"]) == (app.proc.pid, "v1", "live")

        second = deploy(env, "bump", "v2", "--wait", "--timeout", "30")
        assert second.returncode == 0, second.stderr
        assert "1 process follows it" in second.stderr and " is mode " not in second.stderr, second.stderr
        if not app_first:
            assert "Permission denied" not in app.output(), app.output()

        [written] = fleet.glob("*.json")
        assert written.stat().st_uid == pwd.getpwnam(APP_USER).pw_uid
        app.terminate()
        assert app.wait_exit() == -signal.SIGTERM, app.output()  # uvicorn re-raises it
        assert list(fleet.glob("*.json")) == []  # the app removed its own record, in the sticky directory

    assert {path: mode(path) for path in modes} == modes
    assert mode(store / f"{app_name}.json") == 0o644


@pytest.mark.parametrize(
    ("setup", "names", "says"),
    [
        ("store made 0700", "store", "0700 (others cannot search it)"),
        ("parent made 0700", "private", "0700 (others cannot search it)"),
        ("fleet made 0755", "fleet", "0755 (others cannot write their heartbeats there)"),
    ],
)
def test_the_bump_says_in_one_line_what_keeps_other_users_out(
    base: Path, app_name: str, setup: str, names: str, says: str
) -> None:
    """A store other users cannot follow, and no process following it: the bump names
    the path and its mode (and still exits 0: the release is written)."""
    paths = {"private": base / "private", "store": base / "private" / "store"}
    paths["fleet"] = paths["store"] / f"{app_name}.fleet"
    os.mkdir(paths["private"], 0o755)
    os.chmod(paths["private"], 0o700 if setup == "parent made 0700" else 0o755)
    os.mkdir(paths["store"])
    os.chmod(paths["store"], 0o700 if setup == "store made 0700" else 0o755)
    if setup == "fleet made 0755":
        os.mkdir(paths["fleet"])
        os.chmod(paths["fleet"], 0o755)
    env = {"SPA_VERSION_URL": f"file://{paths['store']}", "SPA_VERSION_APP": app_name}

    with ServerProcess("uvicorn", env, user=APP_USER, umask=0o077) as app:
        result = deploy(env, "bump", "v1")
        assert result.returncode == 0, result.stderr
        [line] = result.stderr.splitlines()
        assert f"{paths[names]} is mode " in line and says in line, line
        assert "no process follows it yet" in line and "none running as another user can" in line, line
        assert line.endswith("(docs/deploy-haproxy.md, 'File store permissions')"), line
        wait_for(lambda: "Permission denied" in app.output(), timeout=30, interval=0.1)


def test_a_user_who_cannot_read_the_fleet_gets_one_line(base: Path, app_name: str) -> None:
    """``status`` run by a user the fleet directory keeps out: exit 1 and one line naming
    it, not a traceback; its ``bump`` succeeds (it only cannot count the followers)."""
    store = base / "store"
    env = {"SPA_VERSION_URL": f"file://{store}", "SPA_VERSION_APP": app_name}
    assert deploy(env, "bump", "v1").returncode == 0
    fleet = store / f"{app_name}.fleet"
    os.chmod(fleet, 0o700)
    python = python_for(APP_USER)
    assert python is not None

    def as_app_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *cli_command(*args)[1:]],
            cwd=ROOT,
            env={**os.environ, **env, **python_env()},
            capture_output=True,
            text=True,
            timeout=60,
            **as_user(APP_USER),
        )

    result = as_app_user("status")
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert f"cannot read {fleet}: Permission denied" in line, line

    # A bump by that user (it owns the store, not the fleet) is done: exit 0, no traceback.
    os.chown(store, pwd.getpwnam(APP_USER).pw_uid, -1)
    os.chown(store / f"{app_name}.json", pwd.getpwnam(APP_USER).pw_uid, -1)
    result = as_app_user("bump", "v2")
    assert result.returncode == 0 and result.stderr == "", result
    assert json.loads((store / f"{app_name}.json").read_text())["history"][0]["label"] == "v2"
