"""The usage event survives its trip through a Redis stream entry, in both of its shapes."""

from dataclasses import replace

import pytest

from apps.metering.events import FIELD_NAMES, UsageEvent
from tests.metering.usage_factory import usage_event


@pytest.mark.parametrize("ttft_ms", [56, None])
def test_the_fields_and_the_xadd_arguments_carry_the_same_event(ttft_ms):
    event = replace(usage_event(3, 4, "req_roundtrip"), ttft_ms=ttft_ms, stream=ttft_ms is not None)
    arguments = event.to_xadd_arguments()
    as_pairs = dict(zip(arguments[::2], arguments[1::2], strict=True))

    assert list(as_pairs) == list(FIELD_NAMES)
    assert as_pairs == event.to_fields()
    assert UsageEvent.from_fields(as_pairs) == event
    encoded = {name.encode(): value.encode() for name, value in as_pairs.items()}
    assert UsageEvent.from_fields(encoded) == event  # as redis-py hands them back
