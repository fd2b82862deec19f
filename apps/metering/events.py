"""The usage event: what the gateway hands to the metering pipeline for each finished request.

It travels as the flat string fields of one Redis stream entry (keyspace.USAGE_STREAM). Money
is a decimal string in USD with 10 decimal places; times are unix milliseconds.
"""

from dataclasses import dataclass, fields
from decimal import Decimal


class UsageStatus:
    OK = "ok"  # the upstream answered in full
    CANCELLED = "cancelled"  # the client left mid-stream: charged for what was generated
    FAILED = "failed"  # the upstream failed after the stream started: charged as cancelled


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    org_id: int
    key_id: int
    model: str
    deployment_id: int
    prompt_tokens: int
    completion_tokens: int
    input_price_per_mtok: Decimal  # USD per million tokens, in force when the request started
    output_price_per_mtok: Decimal
    cost: Decimal  # USD, 10 decimal places; what the tenant is charged
    status: str
    stream: bool
    started_at_ms: int
    finished_at_ms: int
    ttft_ms: int | None  # time to first token, streams only

    @property
    def latency_ms(self) -> int:
        return self.finished_at_ms - self.started_at_ms

    def to_fields(self) -> dict[str, str]:
        """Flat string fields for XADD."""
        values = self.field_values()
        return dict(zip(FIELD_NAMES, values, strict=True))

    def to_xadd_arguments(self) -> list[str]:
        """`name, value, name, value, …`: the fields as XADD takes them (the gateway's hot
        path: no dictionary on the way)."""
        values = self.field_values()
        return [part for pair in zip(FIELD_NAMES, values, strict=True) for part in pair]

    def field_values(self) -> tuple[str, ...]:
        """Every field as its string, in FIELD_NAMES order (a boolean is "1" or "0", a
        missing time to first token is "")."""
        return (
            self.request_id, str(self.org_id), str(self.key_id), self.model,
            str(self.deployment_id), str(self.prompt_tokens), str(self.completion_tokens),
            str(self.input_price_per_mtok), str(self.output_price_per_mtok), str(self.cost),
            self.status, "1" if self.stream else "0", str(self.started_at_ms),
            str(self.finished_at_ms), "" if self.ttft_ms is None else str(self.ttft_ms),
        )  # fmt: skip

    @classmethod
    def from_fields(cls, raw: dict[bytes, bytes] | dict[str, str]) -> "UsageEvent":
        """Parse a stream entry; raises KeyError/ValueError on a malformed one."""
        data = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        values: dict[str, object] = {}
        for field in fields(cls):
            text = data[field.name]
            if field.name in {"input_price_per_mtok", "output_price_per_mtok", "cost"}:
                values[field.name] = Decimal(text)
            elif field.name == "stream":
                values[field.name] = text == "1"
            elif field.name == "ttft_ms":
                values[field.name] = int(text) if text else None
            elif field.name in {"request_id", "model", "status"}:
                values[field.name] = text
            else:
                values[field.name] = int(text)
        return cls(**values)  # type: ignore[arg-type]


FIELD_NAMES = tuple(field.name for field in fields(UsageEvent))
