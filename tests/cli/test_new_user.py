"""What a new user of the `spa-version` CLI ran into: out-of-range ports, a ``watch`` on an
unreachable store, ``bump --wait`` on a store without a fleet, empty ``--url`` / ``--app``,
a ``watch`` on an empty store, and ``make demo``'s first run. Real subprocesses (and a real
redis-server where Redis matters), as in tests/test_cli.py."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import RedisServer, cli_command, free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]


class Streaming:
    """A long-running CLI subprocess whose stdout and stderr lines arrive on queues
    (one reader thread each), so a test waits for a line with a deadline."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            cli_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self.readers = [
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _pump(stream: object, lines: queue.Queue[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)
        lines.put("")  # end of stream

    @staticmethod
    def line(lines: queue.Queue[str], timeout: float = 20.0) -> str:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        for reader in self.readers:  # they stop at the end of the stream
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()


@pytest.fixture
def streaming() -> Iterator[list[Streaming]]:
    started: list[Streaming] = []
    yield started
    for process in started:
        process.stop()


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("spa-version"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "http"])
def test_agent_port_out_of_range_is_bad_usage(port: str, app_name: str) -> None:
    """A port outside 1-65535 is refused by the parser: one line, exit 2 (no bind traceback)."""
    result = run_cli("--url", "memory://", "--app", app_name, "agent", "--port", port, "--build", "v1")
    one_line_error(result, 2)
    assert "1-65535" in result.stderr


def test_watch_on_an_unreachable_store_exits_1(app_name: str) -> None:
    """Nothing listening: ``watch`` fails like every other command instead of retrying forever."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        cli_command("--url", url, "--app", app_name, "watch"), capture_output=True, text=True, timeout=30
    )
    one_line_error(result, 1)
    assert "store error" in result.stderr and "cannot reach Redis" in result.stderr
    assert result.stdout == ""


def test_watch_survives_a_redis_restart_in_cli_words(app_name: str, streaming: list[Streaming]) -> None:
    """Once started, ``watch`` outlives a Redis outage; what it says meanwhile is about the
    watch (no worker wording such as "serving epoch"), and it prints the bump made after."""
    server = RedisServer()
    server.start()
    try:
        env = {"SPA_VERSION_URL": server.url, "SPA_VERSION_APP": app_name}
        assert run_cli("bump", "v1", env=env).returncode == 0
        watch = Streaming("watch", "--json", env=env)
        streaming.append(watch)
        assert json.loads(watch.line(watch.stdout))["label"] == "v1"
        server.stop()
        complaint = watch.line(watch.stderr)
        assert complaint.startswith("spa-version: watch: "), complaint
        assert "cannot reach Redis" in complaint and "retrying in " in complaint
        assert "serving epoch" not in complaint and "listener" not in complaint
        server.start()
        assert run_cli("bump", "v2", env=env).returncode == 0  # no subscriber may hear it yet
        assert json.loads(watch.line(watch.stdout, timeout=60))["label"] == "v2"
        assert watch.proc.poll() is None
    finally:
        server.close()


@pytest.mark.parametrize("flag", ["--wait", "--wait-pinned"])
def test_bump_wait_without_a_fleet_refuses_before_bumping(flag: str, tmp_path: Path) -> None:
    """memory:// keeps no heartbeats: ``bump --wait`` says so before it bumps (exit 2 = untouched).

    memory:// lives in one process, so "nothing written" is seen in the output: no bump line."""
    result = run_cli("--url", "memory://", "bump", "v1", flag, "--timeout", "2")
    one_line_error(result, 2)
    assert "memory://" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("option", "env_name"), [("--url", "SPA_VERSION_URL"), ("--app", "SPA_VERSION_APP")])
def test_explicitly_empty_url_or_app_is_refused(option: str, env_name: str, tmp_path: Path) -> None:
    """``--url ''`` / ``--app ''`` are mistakes (an unset shell variable), not the defaults."""
    result = run_cli(option, "", "bump", "v1", cwd=str(tmp_path))
    one_line_error(result, 2)
    assert option in result.stderr
    assert not (tmp_path / ".spa-version").exists()


def test_empty_environment_variables_count_as_unset(tmp_path: Path) -> None:
    """SPA_VERSION_URL='' and SPA_VERSION_APP='' are unset (the common convention): the defaults."""
    env = {"SPA_VERSION_URL": "", "SPA_VERSION_APP": ""}
    result = run_cli("bump", "v1", "--json", env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".spa-version").is_dir()
    got = run_cli("--url", f"file://{tmp_path}/.spa-version", "--app", "default", "get", "--json")
    assert json.loads(got.stdout)["label"] == "v1"


def test_watch_on_an_empty_store_says_so(tmp_path: Path, app_name: str, streaming: list[Streaming]) -> None:
    """No release yet: ``watch`` says so first (stdout as text; stderr with --json, whose
    stdout holds only releases), then prints the first bump."""
    env = {"SPA_VERSION_URL": f"file://{tmp_path}/store", "SPA_VERSION_APP": app_name}
    text = Streaming("watch", env=env)
    streaming.append(text)
    assert text.line(text.stdout) == "no release yet\n"
    as_json = Streaming("watch", "--json", env=env)
    streaming.append(as_json)
    assert "no release yet" in as_json.line(as_json.stderr)
    assert run_cli("bump", "v1", env=env).returncode == 0
    assert json.loads(as_json.line(as_json.stdout))["label"] == "v1"
    assert text.line(text.stdout).startswith("epoch ")


def test_readme_lists_every_bump_option() -> None:
    """The README's CLI summary names every option ``bump --help`` lists."""
    readme = (ROOT / "README.md").read_text()
    summary = readme.split("## The CLI", 1)[1].split("```")[1]
    result = run_cli("bump", "--help")
    options = {word.strip("[],") for word in result.stdout.split() if word.startswith(("--", "[--"))}
    options -= {"--help", "--url", "--app", "--json"}
    assert options and {option for option in options if option not in summary} == set()


def test_demo_seeds_the_store_calmly(tmp_path: Path, app_name: str) -> None:
    """``make demo`` seeds an empty store before its server runs: that first bump must not
    warn that nothing follows the store (it cannot yet); a second run leaves it alone."""
    env = {
        **os.environ,
        "SPA_VERSION_URL": f"file://{tmp_path}/store",
        "SPA_VERSION_APP": app_name,
    }
    make = ["make", "-s", "-C", str(ROOT), "demo-seed", f"BIN={Path(sys.executable).parent}"]
    for _ in range(2):
        result = subprocess.run(make, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result
        assert result.stderr == "" and "no process follows" not in result.stdout, result
    history = run_cli("history", "--json", env=env)
    assert [release["label"] for release in json.loads(history.stdout)] == ["demo-1"]
