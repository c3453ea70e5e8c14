"""Which releases' files stay in the web directory: the last N, and any replaced less
than T ago (``--keep N``, ``--min-age T``).

A release stays while it is among the *keep* newest publishes, or while the publish that
replaced it is younger than *min_age*: a tab that loaded it just before the deploy still
finds its chunks. A file is deleted only if no kept release owns it, and never while it
was written less than *min_age* ago (its modification time), so a file is safe for T
after it stopped being current whatever the release count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .record import ReleaseRecord

__all__ = ["Plan", "parse_age", "plan"]

_AGE_RE = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"15m"``, ``"12h"`` or ``"7d"`` (a number, then
    an optional unit); `ValueError` for anything else (negative, empty, another unit)."""
    match = _AGE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 90s, 15m, 12h or 7d, not {text!r}")
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True)
class Plan:
    """The releases that stay (newest first) and those whose files may go."""

    kept: list[ReleaseRecord]
    retired: list[ReleaseRecord]

    @property
    def kept_paths(self) -> set[str]:
        """Every path a kept release owns: never deleted."""
        return {path for record in self.kept for path in record.files}


def plan(records: list[ReleaseRecord], *, keep: int, min_age: float, now: float) -> Plan:
    """Split *records* (any order) into kept and retired, for ``--keep`` *keep* (>= 1)
    and ``--min-age`` *min_age* seconds, at Unix time *now*."""
    if keep < 1 or min_age < 0:
        raise ValueError("keep must be >= 1 and min_age >= 0")
    newest_first = sorted(records, key=lambda r: (r.sequence, r.published_at, r.release), reverse=True)
    kept: list[ReleaseRecord] = []
    retired: list[ReleaseRecord] = []
    for index, record in enumerate(newest_first):
        replaced_at = newest_first[index - 1].published_at if index else now
        if index < keep or now - replaced_at < min_age:
            kept.append(record)
        else:
            retired.append(record)
    return Plan(kept, retired)
