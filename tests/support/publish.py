"""What the ``assets publish`` tests (tests/assets, tests/browser) read: the real CLI's report of a
publish, and the web directory it left (builds: tests/support/spa_build.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from spa_version.publish.files import TEMP_PREFIX
from spa_version.publish.record import RECORD_DIR
from tests.support.servers import run_cli
from tests.support.spa_build import Build


def publish(build: Build | Path, web: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``spa-version --json assets publish`` with the real CLI; its JSON report (exit 0 asserted)."""
    root = build.root if isinstance(build, Build) else build
    result = run_cli("--json", "assets", "publish", str(root), str(web), *args, env=env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def tree(web: Path) -> dict[str, str]:
    """Every file a static server would serve from *web*: relative path -> SHA-256."""
    return {
        p.relative_to(web).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(web.rglob("*"))
        if p.is_file() and RECORD_DIR not in p.relative_to(web).parts
    }


def leftovers(web: Path) -> list[Path]:
    """Temporary files of a publish anywhere under *web*."""
    return [p for p in web.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def serves(web: Path, build: Build) -> bool:
    """*web* serves *build* complete: every file of it is there with its content."""
    on_disk = tree(web)
    return all(on_disk.get(path) == digest for path, digest in build.files().items())
