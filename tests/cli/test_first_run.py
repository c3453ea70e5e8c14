"""What a first-time user of the `spa-version` CLI sees: each command's ``--help``, and a
bump on the file store naming the directory it wrote and the processes that follow it.
Real subprocesses and a real uvicorn follower, as in tests/test_cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from spa_version import VersionMiddleware, __version__
from tests.support.servers import ThreadedUvicorn, run_cli, wait_for

#: Every command, and words its ``--help`` description must hold (not its one-line help).
DESCRIPTIONS = {
    "bump": "Every process following the store",
    "get": "the release record (null before the first bump)",
    "history": "The store keeps the last 50.",
    "rollback": "under a new, higher epoch",
    "watch": "The current release comes first.",
    "status": "heartbeats every process writes",
    "agent": "drain once a bump made it stale",
    "assets": "open tabs keep their own assets through a deploy",
}


def description(help_text: str) -> str:
    """The paragraph between the usage lines and the first section of an argparse help."""
    usage, second = help_text.split("\n\n")[:2]
    assert usage.startswith("usage: "), help_text
    if second.splitlines()[0].endswith(":"):  # "options:": no description
        return ""
    return " ".join(second.split())  # unwrapped


def test_version_is_the_package_version() -> None:
    """``spa-version --version`` says the version of the package it runs."""
    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"spa-version {__version__}")


def test_every_command_is_described() -> None:
    """The table below covers every command the top-level ``--help`` lists."""
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("  COMMAND\n", 1)[1].split("\n\n")[0]
    assert [line.split()[0] for line in listed.splitlines()] == list(DESCRIPTIONS)


@pytest.mark.parametrize("command", list(DESCRIPTIONS))
def test_command_help_has_a_description(command: str) -> None:
    """``spa-version COMMAND --help`` explains the command in a paragraph of its own."""
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert DESCRIPTIONS[command] in description(result.stdout), result.stdout


def test_history_help_shows_the_limit_default() -> None:
    """``history --help`` says how many releases it prints when --limit is not given."""
    result = run_cli("history", "--help")
    assert result.returncode == 0, result.stderr
    [limit] = [line for line in result.stdout.splitlines() if line.strip().startswith("--limit")]
    assert "(default: 20)" in limit


def test_bump_names_the_absolute_directory_it_wrote(tmp_path: Path, app_name: str) -> None:
    """A relative ``file://`` URL lands in the working directory: the bump says which one, on
    stderr, and that nothing follows it there; ``--json`` keeps stdout pure JSON."""
    env = {"SPA_VERSION_URL": "file://.spa-version", "SPA_VERSION_APP": app_name}
    for name in ("app", "elsewhere"):
        cwd = tmp_path / name
        cwd.mkdir()
        result = run_cli("bump", "v1", "--json", env=env, cwd=str(cwd))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["label"] == "v1"
        store = cwd.resolve() / ".spa-version"
        # One line; it may go on to name a mode that keeps other users out (pytest's
        # tmp_path is private to its user: tests/test_file_permissions.py).
        [line] = result.stderr.splitlines()
        assert line.startswith(
            f"spa-version: wrote {store} (app {app_name}); "
            "no process follows it yet (if your app is running, is this the directory it uses?)"
        ), line
    # A rollback is a bump: it says so too.
    app_dir = tmp_path / "app"
    assert run_cli("bump", "v2", env=env, cwd=str(app_dir)).returncode == 0
    rollback = run_cli("rollback", env=env, cwd=str(app_dir))
    assert rollback.returncode == 0, rollback.stderr
    assert f"spa-version: wrote {app_dir.resolve() / '.spa-version'} (app {app_name}); " in rollback.stderr


def test_bump_counts_the_processes_following_a_file_store(tmp_path: Path, app_name: str) -> None:
    """With a real server following the file store, the bump counts it (its heartbeat record)."""
    url = f"file://{tmp_path}/store"
    env = {"SPA_VERSION_URL": url, "SPA_VERSION_APP": app_name}
    assert run_cli("bump", "v1", env=env).returncode == 0
    follower = VersionMiddleware(Starlette(), store=url, app_name=app_name)

    def reported() -> list[dict[str, Any]]:
        result = run_cli("status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        processes: list[dict[str, Any]] = json.loads(result.stdout)["processes"]
        return processes

    with ThreadedUvicorn(follower):
        wait_for(lambda: len(reported()) == 1, timeout=15, interval=0.1)
        result = run_cli("bump", "v2", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bumped to epoch ")
    assert f"spa-version: wrote {tmp_path}/store (app {app_name}); 1 process follows it\n" == result.stderr
