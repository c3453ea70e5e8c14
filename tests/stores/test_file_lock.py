"""The file store's lock holds whatever happens to the files in its directory.

Two real CLI processes: the first bump is paused while it holds the lock, having read
the document (`tests.support.paused_bump`); an operator tidying the directory deletes
every file in it but the document; a second bump starts. No bump may be lost: both
releases end in the history, in epoch order (docs/protocol.md, "The file store layout").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT, cli_command, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")


def waiting_for_a_lock(pid: int) -> bool:
    """Whether process *pid* is blocked in ``flock`` (proc(5), /proc/locks: "->" marks a
    request waiting for the lock held on the line above)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "->" and fields[2] == "FLOCK" and fields[5] == str(pid):
            return True
    return False


def bump(env: dict[str, str], label: str, paused_on: Path | None = None) -> subprocess.Popen[str]:
    """``spa-version --json bump LABEL`` as a process; with *paused_on*, paused on that fifo."""
    args = ["--json", "bump", label]
    command = cli_command(*args)
    if paused_on is not None:
        command = [sys.executable, "-m", "tests.support.paused_bump", str(paused_on), *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(proc: subprocess.Popen[str]) -> int:
    """The epoch a bump reported, once it exited 0."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return int(json.loads(out)["epoch"])


def test_a_bump_is_not_lost_when_the_lock_is_deleted_under_its_holder(tmp_path: Path, app_name: str) -> None:
    directory = tmp_path / "store"
    env = {**os.environ, "SPA_VERSION_URL": f"file://{directory}", "SPA_VERSION_APP": app_name}
    assert finished(bump(env, "v0")) > 0
    fifo = tmp_path / "pause"
    os.mkfifo(fifo)

    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(bump(env, "v1", paused_on=fifo))
        with open(fifo, "wb"):  # returns once the holder is paused, lock held
            # The operator tidies up: every file but the document goes (a lock file too).
            for path in directory.iterdir():
                if path.is_file() and path.name != f"{app_name}.json":
                    path.unlink()
            procs.append(bump(env, "v2"))
            newcomer = procs[1]
            # The newcomer either waits for the lock (as it must) or, with a lock that
            # could be deleted, already ran beside the holder.
            wait_for(
                lambda: newcomer.poll() is not None or waiting_for_a_lock(newcomer.pid),
                timeout=30,
                interval=0.02,
            )
        # The fifo closed: the holder writes, then the newcomer takes the lock.
        first, second = finished(procs[0]), finished(procs[1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    history = json.loads((directory / f"{app_name}.json").read_text())["history"]
    assert [r["label"] for r in history] == ["v2", "v1", "v0"]
    assert [history[0]["epoch"], history[1]["epoch"]] == [second, first]
    assert history[0]["epoch"] > history[1]["epoch"] > history[2]["epoch"]
