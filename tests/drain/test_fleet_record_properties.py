"""Property-based tests (Hypothesis) of the fleet record parser (`spa_version.fleet_record`).

A fleet record is written by another process, maybe a broken or compromised one: for any
bytes and any JSON, `FleetRecord.parse` returns a valid record or raises `BadRecord` with
one printable line, never another exception; what the heartbeat writes parses back equal.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spa_version.fleet_record import MAX_RECORD_BYTES, STATES, BadRecord, FleetRecord
from spa_version.release import MAX_EPOCH, is_epoch

relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=300)

FIELDS = list(FleetRecord.__dataclass_fields__)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

#: Objects shaped like records: every field name, each with any JSON value or a plausible one.
plausible = {
    "host": st.sampled_from(["web-1", "h", "\x1b]0;x\x07", "", "x" * 300]),
    "pid": st.sampled_from([1, 0, -1, 2**31, True, 1.5, "5"]),
    "updated_at": st.sampled_from([1.5, 0, -1, 1e300, "yesterday", None, 10**400]),
    "epoch": st.sampled_from([1, MAX_EPOCH, MAX_EPOCH + 1, 0, "5", True, 1.0, None]),
    "state": st.sampled_from([*STATES, "gone", 7]),
    "pinned": st.sampled_from([0, 3, "many", -1, None]),
    "streams": st.sampled_from([0, 3, "many", -1, True, None]),
    "build": st.sampled_from(["A", 7, ["x"], "a b", None]),
}
record_like = st.fixed_dictionaries(
    {},
    optional={name: (plausible[name] | json_values) if name in plausible else json_values for name in FIELDS},
)


def parses_or_skips(raw: str | bytes) -> FleetRecord | None:
    """The property: a valid record, or `BadRecord` with one short printable line."""
    try:
        record = FleetRecord.parse(raw)
    except BadRecord as exc:
        message = str(exc)
        assert message and message.isprintable() and len(message) < 400, message
        return None
    check_valid(record)
    return record


def check_valid(record: FleetRecord) -> None:
    assert isinstance(record.host, str) and record.host.isprintable() and 1 <= len(record.host) <= 253
    assert type(record.pid) is int and record.pid >= 1
    assert record.epoch is None or is_epoch(record.epoch)
    assert record.state in STATES and type(record.stopping) is bool
    for value in (record.updated_at, record.started_at, record.interval, record.ttl, record.requests_window):
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    counts = (record.websockets, record.streams, record.pinned)
    for count in (record.drained, *(v for v in counts if v is not None)):
        assert type(count) is int and 0 <= count <= MAX_EPOCH
    assert all(type(v) is int and v >= 0 for v in record.requests_by_epoch.values())
    # Whatever was accepted can be written again, and reads back the same.
    assert FleetRecord.parse(record.to_json()) == record


@relaxed
@given(st.binary(max_size=2000))
@example(b"[" * 100_000)
@example(b'{"host":"h","pid":1,"updated_at":1,"epoch":1e999}')
@example(b'{"host":"h","pid":1,"updated_at":NaN}')
@example(b'{"host":"h","pid":1,"updated_at":1,"epoch":' + b"9" * 5000 + b"}")
@example(b'{"host":"h","pid":1,"updated_at":1,"ttl":' + b"9" * 400 + b"}")
@example(b'{"host":"h\xff","pid":1,"updated_at":1}')
@example(b'{"host":"h\x1b\x07","pid":1,"updated_at":1}')
@example(b'{"host":"h","pid":1,"updated_at":1,"pad":"' + b"x" * MAX_RECORD_BYTES + b'"}')
def test_any_bytes_give_a_record_or_a_skip(raw: bytes) -> None:
    parses_or_skips(raw)


@relaxed
@given(json_values)
def test_any_json_gives_a_record_or_a_skip(value: Any) -> None:
    parses_or_skips(json.dumps(value))


@relaxed
@given(record_like)
@example({"host": "h", "pid": 1, "updated_at": 1, "requests_by_epoch": {"0": 1}})
@example({"host": "h", "pid": 1, "updated_at": 1, "requests_by_epoch": {"１２": 1}})
@example({"host": "h", "pid": 1, "updated_at": 1, "interval": 10**30})
@example({"host": "h", "pid": 1, "updated_at": 1, "interval": None, "ttl": None})
def test_any_record_shaped_object_gives_a_record_or_a_skip(value: dict[str, Any]) -> None:
    record = parses_or_skips(json.dumps(value))
    if record is not None:
        assert {"host", "pid", "updated_at"} <= set(value)


valid_records = st.builds(
    FleetRecord,
    host=st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), min_size=1, max_size=253),
    pid=st.integers(1, 2**31 - 1),
    updated_at=st.floats(0, 253_402_300_800),
    started_at=st.floats(0, 253_402_300_800),
    interval=st.floats(0.001, 86_400),
    ttl=st.floats(0, 3 * 86_400),
    build=st.none() | st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
    state=st.sampled_from(STATES),
    stopping=st.booleans(),
    epoch=st.none() | st.integers(1, MAX_EPOCH),
    websockets=st.none() | st.integers(0, MAX_EPOCH),
    streams=st.none() | st.integers(0, MAX_EPOCH),
    drained=st.integers(0, MAX_EPOCH),
    agent_port=st.none() | st.integers(1, 65535),
    slot=st.none() | st.from_regex(r"[A-Za-z0-9._-]{1,32}", fullmatch=True),
    pinned=st.none() | st.integers(0, MAX_EPOCH),
    requests_by_epoch=st.dictionaries(
        st.sampled_from(["none", "other"]) | st.integers(1, MAX_EPOCH).map(str),
        st.integers(0, 10**9),
        max_size=66,
    ),
    requests_window=st.floats(0, 10**6),
)


@relaxed
@given(valid_records)
def test_what_the_heartbeat_writes_reads_back_equal(record: FleetRecord) -> None:
    """Writer and reader share the type: a record that constructs is one every reader accepts."""
    parsed = FleetRecord.parse(record.to_json())
    if record.slot is None:
        assert parsed == record if record.pinned is None else parsed.pinned is None
    else:
        assert parsed == FleetRecord(**{**_fields(record), "pinned": record.pinned or 0})


def _fields(record: FleetRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS}
