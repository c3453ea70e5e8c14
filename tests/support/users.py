"""Running a test's process as another, unprivileged user (root only).

Popen's ``user=`` alone keeps root's groups, so `as_user` also sets the user's primary
group and no other. The test interpreter may live where that user cannot reach it (a
pyenv under ``/root``, mode 0700): `python_for` then finds one of the same version on
``PATH`` that the user can run, and `python_env` points it at this environment's
packages and the repository.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def as_user(user: str) -> dict[str, Any]:
    """Popen keyword arguments that run the child as *user*, its primary group only."""
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def python_env() -> dict[str, str]:
    """The environment that lets another interpreter of this version import what this
    one does: the project's source, this environment's packages, the repository."""
    paths = [str(ROOT / "src"), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(ROOT)]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


@functools.cache
def python_for(user: str) -> str | None:
    """An interpreter *user* can run that imports the project and uvicorn, or None."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in dict.fromkeys([sys.executable, shutil.which(version), f"/usr/bin/{version}"]):
        if candidate is None:
            continue
        try:
            done = subprocess.run(
                [candidate, "-c", "import spa_version, uvicorn, starlette"],
                env={**os.environ, **python_env()},
                cwd=ROOT,
                capture_output=True,
                timeout=60,
                **as_user(user),
            )
        except OSError:  # not executable by that user
            continue
        if done.returncode == 0:
            return candidate
    return None
