"""The failure vocabulary's helpers: sizes and reasons as people read them."""

from __future__ import annotations

import pytest

from vmcp_actors.backend.failures import (
    MAX_REASON,
    Failure,
    FailureKind,
    PeerErrorResponse,
    ResponseTooLargeError,
    format_bytes,
    short_reason,
)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (16 << 20, "16 MiB"),
        (512 << 10, "512 KiB"),
        (3 << 30, "3 GiB"),
        (1000, "1000 bytes"),
        ((1 << 20) + 1, "1048577 bytes"),
    ],
)
def test_format_bytes_says_sizes_as_people_configure_them(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_short_reason_is_one_bounded_line() -> None:
    assert short_reason(None) == ""
    assert short_reason(Failure(FailureKind.TIMEOUT, "no answer within 3s\nstack...")) == "no answer within 3s"
    long = short_reason(Failure(FailureKind.PROTOCOL, "y" * 500))
    assert len(long) == MAX_REASON
    assert long.endswith("...")


def test_the_limit_error_names_the_limit_and_the_setting() -> None:
    assert str(ResponseTooLargeError(16 << 20)) == "a response larger than the 16 MiB limit (maxResponseBytes=16777216)"


def test_a_peer_error_quotes_a_bounded_message() -> None:
    error = PeerErrorResponse(-32000, "z" * 1000)
    assert error.code == -32000
    assert len(str(error)) < 300
