"""The `spa-version` CLI, run as a real subprocess: output, exit codes, and a store left untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spa_version.stores.base import clock_epoch
from tests.support.servers import RedisServer, run_cli


@pytest.fixture
def env(tmp_path: Path, app_name: str) -> dict[str, str]:
    return {"SPA_VERSION_URL": f"file://{tmp_path}/store", "SPA_VERSION_APP": app_name}


def test_bump_get_history_rollback(env: dict[str, str]) -> None:
    """The everyday cycle works and prints what it did."""
    first = run_cli("bump", "v1", "--note", "first", env=env)
    assert first.returncode == 0, first.stderr
    v1 = json.loads(run_cli("get", "--json", env=env).stdout)
    assert v1["label"] == "v1" and v1["note"] == "first"
    assert first.stdout.startswith(f"bumped to epoch {v1['epoch']} (") and "label=v1" in first.stdout
    assert run_cli("bump", "v2", "--policy", "prompt", env=env).returncode == 0
    got = json.loads(run_cli("get", "--json", env=env).stdout)
    assert got["epoch"] > v1["epoch"] and (got["label"], got["policy"]) == ("v2", "prompt")
    history = json.loads(run_cli("--json", "history", env=env).stdout)
    assert [(r["epoch"], r["label"]) for r in history] == [(got["epoch"], "v2"), (v1["epoch"], "v1")]
    back = json.loads(run_cli("rollback", "--json", env=env).stdout)
    assert back["epoch"] > got["epoch"] and back["label"] == "v1"
    text = run_cli("history", "--limit", "1", env=env).stdout
    assert text.count("\n") == 1 and f"rollback to epoch {v1['epoch']}" in text


def test_bare_bump_derives_a_label(env: dict[str, str], tmp_path: Path) -> None:
    """A bare `spa-version bump` works after a deploy: the label is derived (git hash or build-) + time."""
    result = run_cli("bump", "--json", env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    label = json.loads(result.stdout)["label"]
    assert label.startswith("build-") and len(label) == len("build-20261126034512")


def test_bare_bump_in_a_git_checkout_uses_the_short_hash(env: dict[str, str]) -> None:
    """Inside a git work tree the label starts with the short commit hash, never the full SHA."""
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    label = json.loads(run_cli("bump", "--json", env=env, cwd=str(repo)).stdout)["label"]
    short, _, stamp = label.partition("-")
    assert head.stdout.startswith(short) and len(short) == 10 and stamp.isdigit()


@pytest.mark.parametrize(
    "label",
    ["bad label", "v1\r\nSet-Cookie: a=b", "v1\nX", "v\x01", "x" * 65, "naïve", "a;b"],
)
def test_bad_label_exits_2_with_one_line_and_store_untouched(env: dict[str, str], label: str) -> None:
    """A bad label: one line on stderr, exit 2, nothing written."""
    assert run_cli("bump", "good", env=env).returncode == 0
    result = run_cli("bump", label, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "invalid label" in result.stderr
    assert "Traceback" not in result.stderr
    assert [r["label"] for r in json.loads(run_cli("history", "--json", env=env).stdout)] == ["good"]


def test_nul_in_label_is_refused(env: dict[str, str]) -> None:
    """NUL cannot even be passed in argv, so it is checked through the API path too."""
    from spa_version.release import InvalidRelease, validate_label

    with pytest.raises(InvalidRelease):
        validate_label("v1\x00")


@pytest.mark.parametrize(
    "args",
    [
        ["bump", "v1", "--policy", "explode"],
        ["bump", "v1", "--min-compatible", "zero"],
        ["bump", "v1", "--min-compatible", "0"],
        ["bump", "v1", "--note", "x" * 201],
        ["bump", "v1", "--note", "bell\x07"],
        ["rollback", "--to", "-1"],
        ["bump", "v1", "--timeout", "5"],  # a timeout for a wait that was not asked for
        ["nonsense"],
        [],
    ],
)
def test_bad_usage_exits_2(env: dict[str, str], args: list[str]) -> None:
    """Bad options are refused with exit 2 and one line, before the store is touched."""
    result = run_cli(*args, env=env)
    assert result.returncode == 2, result
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert json.loads(run_cli("get", "--json", env=env).stdout) is None


def test_min_compatible_newer_than_release_exits_2(env: dict[str, str]) -> None:
    """A min_compatible beyond the new epoch is bad input: exit 2, nothing written."""
    beyond = clock_epoch() + 10**9  # about 11 days after the epoch the bump gets (the clock in ms)
    result = run_cli("bump", "v1", "--min-compatible", str(beyond), env=env)
    assert result.returncode == 2 and "newer than the release" in result.stderr
    assert json.loads(run_cli("get", "--json", env=env).stdout) is None


def test_unreachable_store_exits_1_without_traceback(app_name: str) -> None:
    """Redis down: exit 1 and a clear one-line message naming the problem."""
    from tests.support.servers import free_port

    result = run_cli("--url", f"redis://127.0.0.1:{free_port()}/0", "--app", app_name, "get")
    assert result.returncode == 1
    assert "cannot reach Redis" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_url_and_app_exit_2(app_name: str) -> None:
    """An unknown store scheme or a bad app name is bad usage."""
    assert run_cli("--url", "postgres://x", "get").returncode == 2
    assert run_cli("--app", "a/b", "get").returncode == 2


def test_redis_bump_reports_subscribers(redis: RedisServer, app_name: str) -> None:
    """On Redis, bump prints how many subscribers received it."""
    result = run_cli("--url", redis.url, "--app", app_name, "bump", "v1")
    assert result.returncode == 0, result.stderr
    assert "0 subscribers received it" in result.stdout


def test_password_is_not_printed(app_name: str) -> None:
    """Errors never echo the Redis password from the URL."""
    from tests.support.servers import free_port

    result = run_cli("--url", f"redis://user:s3cret@127.0.0.1:{free_port()}/0", "--app", app_name, "get")
    assert result.returncode == 1 and "s3cret" not in result.stderr + result.stdout


def test_watch_streams_each_bump(env: dict[str, str]) -> None:
    """`watch` prints the current release, then each bump as it happens, until stopped."""
    import os
    import select
    import subprocess

    from tests.support.servers import cli_command, wait_for

    assert run_cli("bump", "v1", env=env).returncode == 0
    proc = subprocess.Popen(
        cli_command("watch", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None

    def next_line(timeout: float = 15.0) -> str:
        def readable() -> bool:
            return bool(select.select([proc.stdout], [], [], 0.1)[0])

        wait_for(readable, timeout=timeout, interval=0, message="watch printed nothing in time")
        return proc.stdout.readline()  # type: ignore[union-attr]

    try:
        assert json.loads(next_line())["label"] == "v1"
        assert run_cli("bump", "v2", env=env).returncode == 0
        assert json.loads(next_line())["label"] == "v2"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:abc/0", "redis://127.0.0.1/notanumber", "redis+sentinel://127.0.0.1:26379", "nope"],
)
def test_a_bad_store_url_exits_2_with_one_line(url: str) -> None:
    """A URL that cannot work is bad usage, refused before any connection: one line, no traceback."""
    result = run_cli("--url", url, "get")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("spa-version: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_an_unreachable_cluster_exits_1_with_one_line(app_name: str) -> None:
    """redis+cluster:// with nothing listening (redis-py's RedisClusterException, which is
    no RedisError), and with a real redis-server that is not in cluster mode."""
    from tests.support.servers import free_port, redis_server

    with redis_server() as plain:
        for port, why in ((free_port(), "Connect call failed"), (plain.port, "Cluster mode is not enabled")):
            result = run_cli("--url", f"redis+cluster://127.0.0.1:{port}", "--app", app_name, "get")
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
            assert "cannot reach Redis Cluster" in result.stderr and why in result.stderr, result.stderr


def test_an_unreachable_sentinel_is_one_short_line(app_name: str, tmp_path: Path) -> None:
    """No sentinel answers (nothing listening), or a real one that does not know the
    service: one short line naming the service and the sentinels, no reprs, no password."""
    import shutil

    from tests.support.servers import ServerProcess, free_port

    binary = shutil.which("redis-sentinel")
    assert binary is not None, "make system-deps installs redis-sentinel"
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n")
    with ServerProcess(
        "redis-sentinel", {}, command=[binary, str(conf)], port=port, cwd=tmp_path
    ) as sentinel:
        sentinel.wait_listening(timeout=10)
        for hosts in (f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}", f"127.0.0.1:{port}"):
            url = f"redis+sentinel://user:s3cret@{hosts}/mymaster"
            result = run_cli("--url", url, "--app", app_name, "get")
            assert result.returncode == 1, result.stderr
            line = result.stderr
            assert line.count("\n") == 1 and len(line) < 250, line
            assert "'mymaster'" in line and hosts.replace(",", ", ") in line, line
            assert "<" not in line and "s3cret" not in line and "Traceback" not in line, line
