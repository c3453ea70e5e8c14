"""A publish killed mid-copy, and publishes that overlap, leave a consistent web directory.

Consistent: the shell served is a complete release's, every file it references is there
whole, no temporary file sits under a served name, and the next run finishes the job.
"""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
from pathlib import Path

from spa_version.publish.files import TEMP_PREFIX
from spa_version.publish.record import RECORD_DIR, read_records
from tests.support.publish import leftovers, publish, serves, tree
from tests.support.servers import cli_command, wait_for
from tests.support.spa_build import build_spa


class Publish:
    """``spa-version assets publish`` running as a real process; its stderr in a file.
    With *stall*, the copy of that build file stops for good after its first chunk
    (tests/assets/stalled_publish.py)."""

    def __init__(self, tmp: Path, build: Path, web: Path, *args: str, stall: str | None = None) -> None:
        self.log = tmp / f"publish-{id(self)}.log"
        argv = ["assets", "publish", str(build), str(web), *args]
        command = cli_command(*argv)
        if stall is not None:
            command = [sys.executable, "-m", "tests.assets.stalled_publish", Path(stall).name, *argv]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def stderr(self) -> str:
        return self.log.read_text()


def test_a_publish_killed_mid_copy_serves_nothing_partial(tmp_path: Path) -> None:
    web = tmp_path / "web"
    v1 = build_spa(tmp_path, "v1")
    v2 = build_spa(tmp_path, "v2", big_bytes=3 << 20)  # three 1 MiB chunks
    big = next(p for p in v2.files() if p.startswith("assets/big-"))
    publish(v1, web)

    # The copy of the big file stops after its first chunk (stalled_publish), so the kill
    # always lands mid-copy, with that file half-written under its temporary name.
    run = Publish(tmp_path, v2.root, web, stall=big)
    try:
        partial = wait_for(
            lambda: [p for p in leftovers(web) if p.name.endswith(Path(big).name) and p.stat().st_size > 0],
            timeout=30,
            message=lambda: f"no partial copy of {big}: {run.stderr()}",
        )
    finally:
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(timeout=10)
    assert run.proc.returncode == -signal.SIGKILL
    assert partial[0].stat().st_size < (3 << 20) and partial[0].name.startswith(TEMP_PREFIX)

    assert not (web / big).exists(), "the half-written file is not under its served name"
    assert (web / "index.html").read_text() == (v1.root / "index.html").read_text(), "the shell is still v1's"
    assert serves(web, v1), "v1 is whole"
    assert len(read_records(web)) == 2, "v2 was recorded before any of its files was written"

    # The lock died with the process; the next run cleans up and completes.
    result = subprocess.run(
        cli_command("assets", "publish", str(v2.root), str(web)), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "removed 1 temporary file(s)" in result.stderr and "waiting" not in result.stderr
    assert leftovers(web) == []
    assert serves(web, v2)
    assert tree(web) == {**v1.files(), **v2.files()}, "v1's assets stay (keep 5)"


def test_overlapping_publishes_take_turns(tmp_path: Path) -> None:
    web = tmp_path / "web"
    v1, v2, v3 = (build_spa(tmp_path, f"v{n}") for n in (1, 2, 3))
    publish(v1, web)

    # Hold the lock while two publishes start, so that they really overlap.
    with open(web / RECORD_DIR / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [Publish(tmp_path, build.root, web, "--keep", "2", "--min-age", "0") for build in (v2, v3)]
        try:
            for run in runs:
                wait_for(lambda run=run: "waiting for another publish" in run.stderr(), timeout=30)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    for run in runs:
        assert run.proc.wait(timeout=60) == 0, run.stderr()

    records = read_records(web)
    assert len(records) == 2, "keep 2: the two overlapping releases"
    newest = next(b for b in (v2, v3) if tree(web)["index.html"] == b.files()["index.html"])
    assert set(records[-1].files) == set(newest.files()), "the shell served is the newest record's"
    assert serves(web, newest)
    other = v3 if newest is v2 else v2
    assert all(tree(web).get(p) == d for p, d in other.files().items() if p != "index.html")
    assert set(tree(web)) == set(v2.files()) | set(v3.files()), "v1 pruned once, nothing else"
    assert leftovers(web) == []


def test_ctrl_c_mid_copy_is_exit_1_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    web = tmp_path / "web"
    v1 = build_spa(tmp_path, "v1")
    v2 = build_spa(tmp_path, "v2", big_bytes=3 << 20)
    big = next(p for p in v2.files() if p.startswith("assets/big-"))
    publish(v1, web)
    run = Publish(tmp_path, v2.root, web, stall=big)
    wait_for(lambda: leftovers(web), timeout=30, message=lambda: run.stderr())

    run.proc.send_signal(signal.SIGINT)  # Ctrl-C, while the big file's copy is stalled
    assert run.proc.wait(timeout=10) == 1
    lines = run.stderr().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spa-version: error: interrupted"), lines
    assert leftovers(web) == [], "the partial copy was removed on the way out"
    assert serves(web, v1) and (web / "index.html").read_text() == (v1.root / "index.html").read_text()
