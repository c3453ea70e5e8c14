"""The real CLI's JSON answers (``spa-version --json``), for tests that deploy as an
operator does: `bump_release` (``bump``), `status_json` and `fleet_processes` (``status``).
Each asserts that the command exited 0 (README, "The CLI", lists the keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spa_version.release import Release
from tests.support.servers import run_cli


def bump_release(env: dict[str, str], label: str) -> Release:
    """``spa-version bump LABEL --json`` with *env*: the release it published."""
    result = run_cli("bump", label, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return Release.from_dict({k: v for k, v in json.loads(result.stdout).items() if k != "receivers"})


def status_json(env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """``spa-version status --json`` with *env*, run in *cwd*: the whole summary."""
    result = run_cli("status", "--json", env=env, cwd=None if cwd is None else str(cwd))
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def fleet_processes(env: dict[str, str]) -> list[dict[str, object]]:
    """The ``processes`` of ``spa-version status --json``: one record per live process."""
    processes: list[dict[str, object]] = status_json(env)["processes"]
    return processes
