"""Publishing a frontend build so that open tabs keep their own assets through a deploy.

``spa-version assets publish BUILD_DIR WEB_DIR`` replaces ``rsync --delete``: it copies
the new build in (every file atomically, the HTML shells last), records which files each
release owns, and deletes only the files no release among the last N, and none younger
than T, needs. One concept per module:

- `spa_version.publish.publisher`: `publish` and `inventory`, the steps in order;
- `spa_version.publish.files`: the build's files, atomic writes, temporary names;
- `spa_version.publish.record`: the per-release record beside the files;
- `spa_version.publish.retention`: which releases stay (``--keep``, ``--min-age``);
- `spa_version.publish.lock`: one publish at a time per web directory.

Guarantees and set-up: docs/deploy-haproxy.md, "Publishing the assets".
"""

from __future__ import annotations

from .files import InvalidBuild
from .lock import LockTimeout
from .publisher import Inventory, PublishReport, ReleaseUsage, inventory, publish
from .record import RECORD_DIR, RecordError
from .retention import parse_age

__all__ = [
    "RECORD_DIR",
    "InvalidBuild",
    "Inventory",
    "LockTimeout",
    "PublishReport",
    "RecordError",
    "ReleaseUsage",
    "inventory",
    "parse_age",
    "publish",
]
