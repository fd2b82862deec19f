"""The x-ratelimit-* headers built from the admission script's report."""

import pytest

from apps.gateway.admission import openai_duration, rate_limit_headers


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (-5, b"0ms"),
        (0, b"0ms"),
        (17, b"17ms"),
        (999, b"999ms"),
        (1000, b"1s"),
        (1500, b"1.5s"),
        (1001, b"1.001s"),
        (59_990, b"59.99s"),
        (60_000, b"1m0s"),
        (360_000, b"6m0s"),
        (361_250, b"6m1.25s"),
        (3_600_000, b"1h0m0s"),
        (3_723_000, b"1h2m3s"),
        (90_000_000, b"25h0m0s"),
    ],
)
def test_reset_times_are_written_in_openais_duration_format(milliseconds, text):
    assert openai_duration(milliseconds) == text


def test_both_kinds_of_limit_give_six_headers():
    headers = dict(rate_limit_headers([60, 59, 1000, 100_000, 99_000, 594]))
    assert headers == {
        b"x-ratelimit-limit-requests": b"60",
        b"x-ratelimit-remaining-requests": b"59",
        b"x-ratelimit-reset-requests": b"1s",
        b"x-ratelimit-limit-tokens": b"100000",
        b"x-ratelimit-remaining-tokens": b"99000",
        b"x-ratelimit-reset-tokens": b"594ms",
    }


def test_a_kind_without_a_limit_sends_no_headers():
    only_tokens = dict(rate_limit_headers([-1, -1, -1, 1000, 10, 59_400]))
    assert set(only_tokens) == {
        b"x-ratelimit-limit-tokens",
        b"x-ratelimit-remaining-tokens",
        b"x-ratelimit-reset-tokens",
    }
    assert only_tokens[b"x-ratelimit-reset-tokens"] == b"59.4s"
    assert rate_limit_headers([-1, -1, -1, -1, -1, -1]) == []
