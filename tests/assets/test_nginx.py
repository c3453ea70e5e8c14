"""nginx serves a published web directory as docs/deploy-haproxy.md, "Publishing the
assets", shows: the config block there, verbatim, in a real nginx."""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spa_version.publish.record import RECORD_DIR
from tests.support.publish import publish
from tests.support.servers import ROOT, ServerProcess, free_port, nginx_binary
from tests.support.spa_build import build_spa

DOC = ROOT / "docs" / "deploy-haproxy.md"


def documented_server_block() -> str:
    """The ``nginx`` block under "## Publishing the assets"."""
    section = DOC.read_text().split("\n## Publishing the assets\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory nginx's workers (another user) can read: pytest's tmp_path is 0700."""
    path = Path(tempfile.mkdtemp(prefix="spa-assets-nginx-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_nginx_serves_old_chunks_and_404s_pruned_ones(tmp_path: Path, readable_dir: Path) -> None:
    web = readable_dir / "web"
    v1, v2, v3 = (build_spa(tmp_path, f"v{n}") for n in (1, 2, 3))
    publish(v1, web, "--keep", "2", "--min-age", "0")
    port = free_port()
    server = documented_server_block().replace("/srv/shop/web", str(web))
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid;\nerror_log stderr warn;\nevents {}\nhttp {\n  include /etc/nginx/mime.types;\n"
        f"  access_log off;\n  server {{\n    listen 127.0.0.1:{port};\n{server}  }}\n}}\n"
    )
    command = [nginx_binary(), "-p", str(tmp_path), "-c", "nginx.conf", "-g", "daemon off;"]
    proc = ServerProcess("nginx", {}, command=command, port=port, cwd=tmp_path).start()
    try:
        proc.wait_listening(timeout=15)
        base = f"http://127.0.0.1:{port}/"

        def get(path: str) -> httpx.Response:
            return httpx.get(base + path, timeout=10)

        publish(v2, web, "--keep", "2", "--min-age", "0")
        for route in ("", "reports/42"):
            shell = get(route)
            assert shell.status_code == 200 and f'src="/{v2.entry}"' in shell.text
            assert shell.headers["cache-control"] == "no-store"
        old = get(v1.lazy_a)
        assert old.status_code == 200 and old.content == (v1.root / v1.lazy_a).read_bytes()
        assert "javascript" in old.headers["content-type"] and "immutable" in old.headers["cache-control"]

        publish(v3, web, "--keep", "2", "--min-age", "0")
        for missing in (v1.lazy_a, "assets/lazy-a-MISSING1.js"):
            response = get(missing)
            assert response.status_code == 404 and "<script" not in response.text, missing
        record = next((web / RECORD_DIR / "releases").iterdir()).relative_to(web).as_posix()
        assert get(record).status_code == 404, "the record is not served"
        assert get(f"{RECORD_DIR}/lock").status_code == 404
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait_exit(timeout=15)
        proc.close()
