"""A missing optional dependency is named in one line, with the extra that installs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

# `sys.modules[name] = None` makes `import name` raise ModuleNotFoundError, exactly as if
# the package were not installed (Python docs, "The module cache").
BLOCKED_IMPORT = """
import sys
sys.modules[{blocked!r}] = None
try:
    import {module}
except ImportError as exc:
    print(type(exc).__name__, exc, sep=": ")
else:
    print("imported")
"""


@pytest.mark.parametrize(
    ("blocked", "module", "extra"),
    [
        ("django", "spa_version.django", "spa-version[django]"),
        ("redis", "spa_version.stores.redis", "spa-version[redis]"),
    ],
)
def test_a_missing_extra_is_named(blocked: str, module: str, extra: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT.format(blocked=blocked, module=module)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("ImportError: "), line
    assert f"pip install '{extra}'" in line
    assert "\n" not in line
