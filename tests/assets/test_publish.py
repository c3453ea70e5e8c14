"""``spa-version assets publish`` / ``assets list`` with the real CLI on real esbuild builds."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

from spa_version.publish.record import RECORD_DIR
from tests.support.publish import leftovers, publish, serves, tree
from tests.support.servers import run_cli
from tests.support.spa_build import Build, build_spa


@pytest.fixture
def builds(tmp_path: Path) -> list[Build]:
    """Four versions of the same app: every hashed name differs between them."""
    return [build_spa(tmp_path, f"v{n}") for n in range(1, 5)]


def stat_all(web: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(web).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in web.rglob("*")}


def listing(web: Path) -> dict[str, object]:
    result = run_cli("--json", "assets", "list", str(web))
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_publish_copies_the_build_and_again_writes_nothing(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    first = publish(builds[0], web)
    assert tree(web) == builds[0].files()
    assert first["written"][-1] == "index.html", "the shell is written last"
    assert len(first["written"]) == len(builds[0].files())
    before = stat_all(web)

    again = publish(builds[0], web)
    assert again["release"] == first["release"], "the default name is the build's content hash"
    assert again["written"] == [] and again["unchanged"] == len(builds[0].files())
    assert stat_all(web) == before, "nothing was rewritten"


def test_old_releases_stay_for_keep_then_are_pruned(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    v1, v2, v3, v4 = builds
    publish(v1, web, "--keep", "2", "--min-age", "0")
    report = publish(v2, web, "--keep", "2", "--min-age", "0")
    assert report["pruned"] == []
    assert serves(web, v2) and (web / v1.lazy_a).exists() and (web / v1.entry).exists()

    report = publish(v3, web, "--keep", "2", "--min-age", "0")
    v1_assets = sorted(p for p in v1.files() if p != "index.html")
    assert sorted(report["pruned"]) == v1_assets, "v1's own files, never the shell the others own"
    assert not any((web / p).exists() for p in v1_assets)
    assert serves(web, v3) and (web / v2.lazy_a).exists()

    publish(v4, web, "--keep", "2", "--min-age", "0")
    assert serves(web, v4)
    assert set(tree(web)) == set(v4.files()) | set(v3.files())
    kept = listing(web)
    releases = kept["releases"]
    assert isinstance(releases, list) and len(releases) == 2
    on_disk = sum((web / p).stat().st_size for p in tree(web))
    assert kept["bytes"] == on_disk and kept["files"] == len(tree(web)) and kept["unowned"] == 0
    text = run_cli("assets", "list", str(web)).stdout
    assert f"kept 2 release(s): {len(tree(web))} file(s)" in text


def test_min_age_keeps_a_release_replaced_recently(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    v1, v2, v3, _ = builds
    for build in (v1, v2, v3):
        publish(build, web, "--keep", "1", "--min-age", "1h")
    assert all((web / b.lazy_a).exists() for b in (v1, v2, v3)), "each was replaced less than 1 h ago"
    report = publish(v3, web, "--keep", "1", "--min-age", "0")
    assert report["written"] == [] and len(report["forgotten"]) == 2
    assert tree(web) == v3.files()


def test_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    v1, v2 = builds[:2]
    publish(v1, web)
    before = stat_all(web)
    records = sorted((web / RECORD_DIR / "releases").iterdir())
    report = publish(v2, web, "--keep", "1", "--min-age", "0", "--dry-run")
    assert report["dry_run"] is True
    assert len(report["written"]) == len(v2.files())
    assert sorted(report["pruned"]) == sorted(p for p in v1.files() if p != "index.html")
    assert stat_all(web) == before and sorted((web / RECORD_DIR / "releases").iterdir()) == records
    text = run_cli("assets", "publish", str(v2.root), str(web), "--dry-run", "--keep", "1", "--min-age", "0")
    assert (
        text.returncode == 0 and text.stdout.startswith("dry run:") and "would prune 4 file(s)" in text.stdout
    )
    assert not (tmp_path / "never").exists()
    fresh = run_cli("assets", "publish", str(v2.root), str(tmp_path / "never"), "--dry-run")
    assert fresh.returncode == 0 and "would write 5 file(s)" in fresh.stdout
    assert not (tmp_path / "never").exists(), "a dry run creates no directory"


def test_a_directory_filled_before_is_adopted_as_a_release(tmp_path: Path, builds: list[Build]) -> None:
    """The first publish into a directory rsync filled keeps its files as one release."""
    web = tmp_path / "web"
    v1, v2, v3, _ = builds
    shutil.copytree(v1.root, web)
    result = run_cli("assets", "publish", str(v2.root), str(web), "--keep", "2", "--min-age", "0")
    assert result.returncode == 0, result.stderr
    assert "as release adopted-" in result.stderr
    assert serves(web, v2) and (web / v1.lazy_b).exists()
    publish(v3, web, "--keep", "2", "--min-age", "0")
    assert not (web / v1.lazy_b).exists()
    assert set(tree(web)) == set(v2.files()) | set(v3.files())


def fails(*args: str, code: int) -> str:
    result = run_cli("assets", *args)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return result.stderr


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    v1, v2 = builds[:2]
    publish(v1, web)
    before = tree(web)
    empty = tmp_path / "empty"
    empty.mkdir()
    reserved = tmp_path / "reserved"
    shutil.copytree(v2.root, reserved)
    (reserved / RECORD_DIR).mkdir()
    (reserved / RECORD_DIR / "x").write_text("x")
    fifo = tmp_path / "fifo-build"
    shutil.copytree(v2.root, fifo)
    os.mkfifo(fifo / "assets" / "pipe.js")
    backslash = tmp_path / "backslash-build"
    shutil.copytree(v2.root, backslash)
    (backslash / "assets" / "a\\b.js").write_text("x")

    assert "does not exist" in fails("publish", str(tmp_path / "missing"), str(web), code=2)
    assert "has no files" in fails("publish", str(empty), str(web), code=2)
    assert "publisher's own record" in fails("publish", str(reserved), str(web), code=2)
    assert "not a regular file" in fails("publish", str(fifo), str(web), code=2)
    assert "backslash" in fails("publish", str(backslash), str(web), code=2)
    assert "overlap" in fails("publish", str(v2.root), str(v2.root / "web"), code=2)
    assert "--keep" in fails("publish", str(v2.root), str(web), "--keep", "0", code=2)
    assert "--min-age" in fails("publish", str(v2.root), str(web), "--min-age", "-1d", code=2)
    assert "invalid label" in fails("publish", str(v2.root), str(web), "--release", "a b", code=2)
    publish(v1, web, "--release", "r1")
    assert "other files" in fails("publish", str(v2.root), str(web), "--release", "r1", code=2)
    assert not (web / v2.entry).exists()
    assert tree(web) == before
    assert "does not exist" in fails("list", str(tmp_path / "missing"), code=2)


def test_a_record_not_valid_is_exit_1_and_changes_nothing(tmp_path: Path, builds: list[Build]) -> None:
    """A damaged or hostile record never makes the publisher delete outside the web directory."""
    web = tmp_path / "web"
    v1, v2 = builds[:2]
    publish(v1, web)
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    hostile = {
        "release": "evil",
        "sequence": 0,
        "published_at": 0,
        "files": {"../outside.txt": {"sha256": "0" * 64, "size": 9}},
    }
    record = web / RECORD_DIR / "releases" / "evil.json"
    record.write_text(json.dumps(hostile))
    before = tree(web)
    stderr = fails("publish", str(v2.root), str(web), "--keep", "1", "--min-age", "0", code=1)
    assert "evil.json is not valid" in stderr and "bad file path" in stderr
    assert outside.read_text() == "not yours" and tree(web) == before
    for broken in ("{", "[]", json.dumps({**hostile, "files": {}, "release": "other"}), "1" * 10):
        record.write_text(broken)
        fails("publish", str(v2.root), str(web), code=1)
        fails("list", str(web), code=1)
    assert tree(web) == before


def test_a_held_lock_times_out_in_one_line(tmp_path: Path, builds: list[Build]) -> None:
    web = tmp_path / "web"
    publish(builds[0], web)
    with open(web / RECORD_DIR / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_cli("assets", "publish", str(builds[1].root), str(web), "--lock-timeout", "0.3")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("spa-version: error: another publish into")
    assert "waiting for another publish" in result.stderr
    assert tree(web) == builds[0].files() and leftovers(web) == []


def test_new_names_first_then_replaced_files_then_the_shells(tmp_path: Path, builds: list[Build]) -> None:
    """An unhashed file that references assets (a service worker) goes after the new
    assets; the shell goes last."""
    web = tmp_path / "web"
    v1, v2 = builds[:2]
    for build in (v1, v2):
        (build.root / "sw.js").write_text(f"// precache {build.entry}\n")
    publish(v1, web)
    report = publish(v2, web)
    written = report["written"]
    assert written[-2:] == ["sw.js", "index.html"]
    assert sorted(written[:-2]) == sorted(p for p in v2.files() if p.startswith("assets/"))
    assert tree(web)["sw.js"] == v2.files()["sw.js"]
