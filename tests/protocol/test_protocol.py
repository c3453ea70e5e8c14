"""The wire format of docs/protocol.md: header values, client epochs, close reasons."""

from __future__ import annotations

import pytest

from spa_version.current import fallback_release
from spa_version.options import InvalidOptions, Options
from spa_version.protocol import (
    MAX_CLOSE_REASON_BYTES,
    UNRELEASED_EPOCH,
    close_reason,
    format_header,
    parse_client_epoch,
    parse_client_query,
    parse_header,
)
from spa_version.release import InvalidRelease, Release


def test_format_without_min() -> None:
    """The header value leads with the epoch; min is left out when unset."""
    assert format_header(Release(1, "demo-1")) == "1; label=demo-1; policy=next-navigation"


def test_format_with_min() -> None:
    """min_compatible is sent as the min parameter."""
    value = format_header(Release(42, "abc", "immediate", 40))
    assert value == "42; label=abc; policy=immediate; min=40"


@pytest.mark.parametrize(
    "release",
    [
        Release(1, "a"),
        Release(99, "x" * 64, "silent", 1),
        Release(123456789012345, "v.1_2-3", "prompt", 123456789012345),
    ],
)
def test_parse_inverts_format(release: Release) -> None:
    """parse_header(format_header(r)) recovers epoch, label, policy and min."""
    parsed = parse_header(format_header(release))
    assert (parsed.epoch, parsed.label, parsed.policy, parsed.min_compatible) == (
        release.epoch,
        release.label,
        release.policy,
        release.min_compatible,
    )


def test_parse_ignores_unknown_parameters_and_spaces() -> None:
    """Unknown parameters are skipped so the format can grow."""
    parsed = parse_header(b" 5 ;label = v5;future=thing; policy=prompt ;flag")
    assert (parsed.epoch, parsed.label, parsed.policy) == (5, "v5", "prompt")


def test_parse_reads_the_unreleased_value() -> None:
    """Epoch 0 is the value stamped before the first release (docs/protocol.md, "Before the
    first release"): it parses; a ``min`` of 0 does not."""
    parsed = parse_header("0; label=unreleased; policy=next-navigation")
    assert (parsed.epoch, parsed.label, parsed.policy, parsed.min_compatible) == (
        UNRELEASED_EPOCH,
        "unreleased",
        "next-navigation",
        None,
    )
    with pytest.raises(InvalidRelease):
        parse_header("0; label=x; min=0")


def test_a_fallback_of_epoch_0_is_refused() -> None:
    """A fallback is a release: epoch 0 is none, and the option says so at start."""
    with pytest.raises(InvalidRelease):
        fallback_release("0; label=boot")
    with pytest.raises(InvalidOptions, match="fallback"):
        Options(fallback="0; label=boot")
    assert fallback_release("3").label == "fallback"


@pytest.mark.parametrize("value", ["", "v1", "-1", "1e3", "1.5", "9" * 16, "٣", b"\xff"])
def test_parse_rejects_bad_epochs(value: str | bytes) -> None:
    """A value that does not start with a sane epoch is invalid."""
    with pytest.raises(InvalidRelease):
        parse_header(value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"41", 41),
        (b"1", 1),
        (b"0", None),
        (b"", None),
        (b"-1", None),
        (b"41abc", None),
        (b"9" * 16, None),
        (b"\xd9\xa3", None),
        # A list (XHR joins a header set twice, proxies join repeated lines): the highest
        # valid element counts, invalid elements are skipped, whitespace around each is not.
        (b"1, 1", 1),
        (b"3,7", 7),
        (b" 7 ,\t3\t", 7),
        (b"abc, 5", 5),
        (b"5, 0, -2, 9999999999999999", 5),
        (b",,", None),
        (b" , ", None),
        (b"1 2", None),
        ("12, 40", 40),
        ("\u0663, 4", 4),
    ],
)
def test_parse_client_epoch(raw: bytes | str, expected: int | None) -> None:
    """The request header is a list of decimal epochs; the highest valid one counts, else None."""
    assert parse_client_epoch(raw) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"spa-client-version=41", 41),
        (b"a=1&spa-client-version=41&b=2", 41),
        (b"spa-client-version=%FF", None),
        (b"spa-client-version=%E2%82%AC", None),
        (b"spa-client-version=\xff\xfe", None),
        (b"spa-client-version=%", None),
        (b"spa-client-version=%3", None),
        (b"spa-client-version=1%2C%205", 5),
        (b"spa-client-version=+7+", 7),
        (b"spa-client-version=3&spa-client-version=9", 9),
        (b"spa%2Dclient-version=6", 6),
        (b"spa-client-versionx=6", None),
        (b"", None),
    ],
)
def test_parse_client_query(query: bytes, expected: int | None) -> None:
    """The websocket query parameter follows the header's rule and never raises."""
    assert parse_client_query(query, b"spa-client-version") == expected


def test_close_reason_fits_a_close_frame() -> None:
    """The drain close reason is the header value, or the bare epoch when that is too long."""
    short = Release(43, "b7")
    assert close_reason(short) == format_header(short)
    long = Release(10**14, "x" * 64, "next-navigation", 10**14)
    reason = close_reason(long)
    assert len(reason.encode()) <= MAX_CLOSE_REASON_BYTES
    assert parse_header(reason).epoch == 10**14
