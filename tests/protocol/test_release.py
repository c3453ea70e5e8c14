"""The release record: validation on the way in and on the way out of a store."""

from __future__ import annotations

import json

import pytest

from spa_version.release import MAX_LABEL_LENGTH, InvalidRelease, Release, validate_label


@pytest.mark.parametrize(
    "label",
    [
        "v1",
        "a1b2c3d4e5-20261126034512",
        "release_2026.11.26",
        "x" * MAX_LABEL_LENGTH,
    ],
)
def test_good_labels_pass(label: str) -> None:
    """Labels from the safe set, up to 64 characters, are accepted unchanged."""
    assert validate_label(label) == label


@pytest.mark.parametrize(
    "label",
    [
        # header splitting
        "v1\r\nSet-Cookie: x=1",
        "v1\n",
        "v1\r",
        "v\x00",
        # separators of the wire format
        "a;b",
        "a=b",
        "a b",
        # size
        "",
        "x" * (MAX_LABEL_LENGTH + 1),
        # non-ASCII and other punctuation
        "café",
        "v1/2",
        "<script>",
    ],
)
def test_bad_labels_are_refused(label: str) -> None:
    """Anything outside [A-Za-z0-9._-]{1,64} raises InvalidRelease."""
    with pytest.raises(InvalidRelease):
        validate_label(label)


def test_round_trip_through_json() -> None:
    """A release survives to_json/from_json unchanged."""
    release = Release(7, "v7", "prompt", 5, "2026-11-26T03:45:12Z", "hot fix")
    assert Release.from_json(release.to_json()) == release


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"null",
        b'{"label": "v1"}',
        b'{"epoch": 0, "label": "v1"}',
        b'{"epoch": -3, "label": "v1"}',
        b'{"epoch": true, "label": "v1"}',
        b'{"epoch": "5", "label": "v1"}',
        b'{"epoch": 5, "label": "v1\\r\\nX-Evil: 1"}',
        b'{"epoch": 5, "label": "v1", "policy": "explode"}',
        b'{"epoch": 5, "label": "v1", "policy": ["list"]}',
        b'{"epoch": 5, "label": "v1", "min_compatible": 6}',
        b'{"epoch": 5, "label": "v1", "note": "bell\\u0007"}',
        b"\xff\xfe",
    ],
)
def test_bad_stored_records_are_refused(raw: bytes) -> None:
    """Corrupt or hostile store values raise InvalidRelease instead of reaching a header."""
    with pytest.raises(InvalidRelease):
        Release.from_json(raw)


def test_missing_optional_fields_take_defaults() -> None:
    """Only epoch and label are required in a stored record."""
    release = Release.from_json(json.dumps({"epoch": 3, "label": "v3"}))
    assert (release.policy, release.min_compatible, release.note) == ("next-navigation", None, None)
