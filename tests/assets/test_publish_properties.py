"""Property-based tests (Hypothesis) for what the publisher parses and decides:
``--min-age`` durations, record paths, and the retention plan."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spa_version.publish import parse_age
from spa_version.publish.files import safe_path
from spa_version.publish.record import RECORD_DIR, FileEntry, ReleaseRecord
from spa_version.publish.retention import plan
from spa_version.release import MAX_LABEL_LENGTH

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(0, 10**9 - 1), st.sampled_from(sorted(UNITS)))
def test_a_whole_duration_parses_to_its_seconds(number: int, unit: str) -> None:
    assert parse_age(f"{number}{unit}") == number * UNITS[unit]


@given(st.text(max_size=20))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_age(text)
    except ValueError as exc:
        assert repr(text) in str(exc)
    else:
        assert seconds >= 0 and text[-1:] in "0123456789smhd"


@given(st.text(max_size=40))
def test_a_record_path_stays_inside_the_web_directory(path: str) -> None:
    """Whatever a record says, an accepted path joined to the web directory stays in it."""
    try:
        accepted = safe_path(path, reserved=RECORD_DIR)
    except ValueError:
        return
    joined = posixpath.normpath(posixpath.join("/web", accepted))
    assert joined.startswith("/web/") and joined == f"/web/{accepted}"
    assert not joined.startswith(f"/web/{RECORD_DIR}/") and joined != f"/web/{RECORD_DIR}"


ESCAPES = ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "a/", "", "a\\b", RECORD_DIR, f"{RECORD_DIR}/x"]


@pytest.mark.parametrize("path", ESCAPES)
def test_known_escapes_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        safe_path(path, reserved=RECORD_DIR)


records_strategy = st.lists(
    st.tuples(st.integers(0, 10**6), st.floats(0, 10**6, allow_nan=False)),
    max_size=12,
    unique_by=lambda t: t[0],
)


@given(records_strategy, st.integers(1, 6), st.floats(0, 10**6, allow_nan=False), st.floats(0, 2 * 10**6))
def test_the_plan_keeps_the_newest_and_the_recently_replaced(
    specs: list[tuple[int, float]], keep: int, min_age: float, now: float
) -> None:
    name = iter(f"r{n}" for n in range(100))
    records = [ReleaseRecord(next(name)[:MAX_LABEL_LENGTH], seq, at, {}) for seq, at in specs]
    decided = plan(records, keep=keep, min_age=min_age, now=now)
    kept = {r.release for r in decided.kept}
    retired = {r.release for r in decided.retired}
    assert kept | retired == {r.release for r in records} and not kept & retired
    newest_first = sorted(records, key=lambda r: r.sequence, reverse=True)
    assert {r.release for r in newest_first[:keep]} <= kept, "the last N always stay"
    for index, record in enumerate(newest_first):
        if record.release in retired:
            assert index >= keep
            assert now - newest_first[index - 1].published_at >= min_age, "replaced at least T ago"


def test_the_plan_keeps_the_files_of_kept_releases() -> None:
    entry = FileEntry("0" * 64, 1)
    old = ReleaseRecord("old", 1, 0.0, {"index.html": entry, "assets/a-1.js": entry})
    new = ReleaseRecord("new", 2, 10.0, {"index.html": entry, "assets/a-2.js": entry})
    decided = plan([old, new], keep=1, min_age=0, now=20.0)
    assert decided.kept == [new] and decided.retired == [old]
    assert decided.kept_paths == {"index.html", "assets/a-2.js"}
