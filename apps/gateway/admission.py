"""Admission and settlement: the one Redis round trip before a request is forwarded, and the
one after it finished.

The Lua scripts (apps/gateway/lua/) run atomically on the tenant's slot (every key carries
`{o:<org>}`), so what they check and take holds across every worker and machine sharing the
Redis: the key's cut-off, token buckets for requests and tokens (key and organization), the
requests in flight, and a hold on the tenant's credit for the most the request can cost.
"""

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from apps.gateway.errors import ApiError, authentication_failed, service_unavailable
from apps.gateway.key_cache import KeyRecord
from apps.gateway.pricing import plain
from apps.hotstate import keyspace
from apps.hotstate.pipelined_redis import PipelinedRedis
from apps.ledger.money import units_to_usd

log = logging.getLogger(__name__)

LUA = Path(__file__).parent / "lua"
LOG_EVERY_S = 10.0
SETTLE_RETRY_PAUSES_S = (0.2, 1.0, 5.0, 0.0)  # four attempts over about six seconds
SETTLED_MARKER_MIN_LIFETIME_S = 60
KEY_NAMES_CACHED = 65_536  # tenants and keys whose Redis key names are kept ready
LIMITS_HASH_EXTRA_LIFETIME_S = 60  # the limits hash outlives its last write by a hold's life + this

ADMITTED, CUT_OFF, RATE_LIMITED, TOO_MANY_IN_FLIGHT, NO_CREDIT, NOT_SEEDED, STALE, SUSPENDED = (
    range(1, 9)
)


class LuaScript:
    """A Lua script called by EVALSHA; loaded when each connection opens (see `load_command`)
    and again whenever Redis answers NOSCRIPT (its script cache was flushed)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    @property
    def load_command(self) -> tuple[str, str, str]:
        return ("SCRIPT", "LOAD", self.source)

    def call(self, keys: tuple[str, ...], args: list[object]) -> tuple[object, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def run(self, client: PipelinedRedis, keys: tuple[str, ...], args: list[object]) -> Any:
        command = self.call(keys, args)
        try:
            return await client.execute(*command)
        except NoScriptError:
            await client.execute(*self.load_command)
            return await client.execute(*command)


LIMITS_STATE_LUA = (LUA / "limits_state.lua").read_text()  # shared by both scripts
ADMIT_SCRIPT = LuaScript(LIMITS_STATE_LUA + (LUA / "admit.lua").read_text())
SETTLE_SCRIPT = LuaScript(LIMITS_STATE_LUA + (LUA / "settle.lua").read_text())
PEEK_SCRIPT = LuaScript(LIMITS_STATE_LUA + (LUA / "peek.lua").read_text())
SCRIPT_LOADS = (ADMIT_SCRIPT.load_command, SETTLE_SCRIPT.load_command, PEEK_SCRIPT.load_command)


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request wants: tokens, output allowance and prices (1e-10 USD per token)."""

    request_id: str
    prompt_tokens: int = 0
    allowance: int = 0  # output tokens over all choices
    choices: int = 1
    prompt_cost_units: Decimal = Decimal(0)
    output_price_units: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Admitted:
    allowance: int  # output tokens over all choices, possibly lowered to what credit affords
    hold_units: int
    headers: list[tuple[bytes, bytes]]
    epoch: int
    credit_left_units: int | None = None  # after the hold; None when admitted without Redis

    @property
    def metered(self) -> bool:
        """False when Redis was down and the request was admitted anyway (fail-open)."""
        return self.credit_left_units is not None


@lru_cache(maxsize=KEY_NAMES_CACHED)
def admit_keys(org_id: int, key_id: int) -> tuple[str, ...]:
    """The Redis keys admit.lua reads and writes, in its KEYS order."""
    return (
        keyspace.key_not_valid_after(org_id, key_id),
        keyspace.tenant_epoch(org_id),
        *settle_keys(org_id),
    )


@lru_cache(maxsize=KEY_NAMES_CACHED)
def settle_keys(org_id: int) -> tuple[str, ...]:
    """The Redis keys settle.lua reads and writes, in its KEYS order (the request's settled
    marker follows them)."""
    return (
        keyspace.token_buckets(org_id),
        keyspace.credit_available(org_id),
        keyspace.reservations(org_id),
        keyspace.reservation_deadlines(org_id),
    )


class Admission:
    """Admission on the worker's fast connection (REDIS_TIMEOUT_S), settlement on its own
    patient one (REDIS_SETTLE_TIMEOUT_S): both pipelined, one round trip each."""

    def __init__(
        self,
        client: PipelinedRedis,
        settle_client: PipelinedRedis,
        *,
        fail_open: bool,
        min_answer_tokens: int,
        hold_lifetime_s: int,
    ) -> None:
        self._client = client
        self._settle_client = settle_client
        self._fail_open = fail_open
        self._min_answer_tokens = min_answer_tokens
        self._hold_lifetime_s = hold_lifetime_s
        self._limits_kept_s = hold_lifetime_s + LIMITS_HASH_EXTRA_LIFETIME_S
        self._marker_lifetime_s = settled_marker_lifetime_s(settle_client.timeout_s)
        self._last_logged = 0.0
        self.redis_failures = 0

    async def admit(self, key: KeyRecord, ask: Ask) -> Admitted | int:
        """Admitted; NOT_SEEDED when the credit counter must first be loaded from the ledger;
        STALE when the key's limits changed since it was cached (nothing was taken).
        Raises ApiError for every refusal (401, 402, 429, 503)."""
        args = [
            ask.request_id,
            key.key_limits.rpm, key.key_limits.tpm, key.key_limits.concurrency,
            key.org_limits.rpm, key.org_limits.tpm, key.org_limits.concurrency,
            ask.prompt_tokens, ask.allowance, ask.choices,
            plain(ask.prompt_cost_units), plain(ask.output_price_units),
            key.spending_floor_units, self._min_answer_tokens,
            self._hold_lifetime_s, self._limits_kept_s, key.epoch, int(key.suspended),
            key.id,
        ]  # fmt: skip
        try:
            reply = await ADMIT_SCRIPT.run(self._client, admit_keys(key.org_id, key.id), args)
        except RedisError as error:
            self._note_redis_failure(error)
            if self._fail_open:
                return Admitted(ask.allowance, 0, [], key.epoch)
            raise service_unavailable(
                "The service is temporarily unable to admit requests; retry shortly."
            ) from None
        return _verdict(reply, key)

    async def peek_headers(self, key: KeyRecord) -> list[tuple[bytes, bytes]]:
        """The x-ratelimit-* headers of `key` as its buckets stand, taking nothing: for an
        answer given before admission. No headers for a key without rate limits (and no round
        trip), nor when Redis does not answer (the answer goes out without them)."""
        mine, org = key.key_limits, key.org_limits
        if not (mine.rpm or mine.tpm or org.rpm or org.tpm):
            return []
        keys = (keyspace.token_buckets(key.org_id),)
        args = [mine.rpm, mine.tpm, org.rpm, org.tpm, key.id]
        try:
            reply = await PEEK_SCRIPT.run(self._client, keys, args)
        except RedisError as error:
            self._note_redis_failure(error)
            return []
        return rate_limit_headers(reply)

    async def seed_credit(self, key: KeyRecord, balance_units: int) -> None:
        """Start the tenant's credit counter from the ledger balance (if nobody did yet)."""
        await self._client.execute(
            "SET", keyspace.credit_available(key.org_id), balance_units, "NX"
        )

    async def settle(
        self, key: KeyRecord, request_id: str, *, token_refund: int, cost_units: int,
        event: list[str] | None,
    ) -> None:  # fmt: skip
        """Give back what the request did not use and hand its usage event to metering, in
        one pipelined round trip. Runs after the answer, on its own patient connection,
        and is retried: the script's settled marker makes a repeat a no-op, and metering
        ingests each request id once."""
        keys = (
            *settle_keys(key.org_id),
            keyspace.settled_marker(key.org_id, request_id),
        )
        args = [
            request_id, token_refund, key.key_limits.tpm, key.org_limits.tpm, cost_units, key.id,
            key.key_limits.concurrency, self._limits_kept_s, self._marker_lifetime_s,
        ]  # fmt: skip
        for attempt, pause in enumerate(SETTLE_RETRY_PAUSES_S):
            try:
                await self._settle_once(keys, args, event)
                return
            except RedisError as error:
                self._note_redis_failure(error)
                log.warning(
                    "settlement of %s failed (attempt %d): %s", request_id, attempt + 1, error
                )
                await asyncio.sleep(pause)
        log.error("settlement of request %s was not recorded", request_id)

    async def _settle_once(
        self, keys: tuple[str, ...], args: list[object], event: list[str] | None
    ) -> None:
        client = self._settle_client
        if event is None:
            await SETTLE_SCRIPT.run(client, keys, args)
            return
        commands = [SETTLE_SCRIPT.call(keys, args), _xadd(event)]
        try:
            await client.execute_many(commands)
        except NoScriptError:  # the XADD went in: metering ingests a request id only once
            await client.execute(*SETTLE_SCRIPT.load_command)
            await client.execute_many(commands)

    async def close(self) -> None:
        await self._settle_client.aclose()

    def _note_redis_failure(self, error: RedisError) -> None:
        self.redis_failures += 1
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY_S:
            self._last_logged = now
            policy = "admitting (fail open)" if self._fail_open else "refusing with 503"
            log.error(
                "Redis unavailable for admission (%s); %s; %d failures so far",
                type(error).__name__,
                policy,
                self.redis_failures,
            )


def settled_marker_lifetime_s(settle_timeout_s: float) -> int:
    """How long a request's settled marker lives: twice the longest time its settlement can
    take from the first attempt to the last (each attempt waits up to `settle_timeout_s`).
    A marker per request, kept no longer than that: at 4,000 requests/s a day-long marker
    would hold ~350 million keys (~30 GB), this one about 400,000."""
    attempts = len(SETTLE_RETRY_PAUSES_S)
    window = attempts * settle_timeout_s + sum(SETTLE_RETRY_PAUSES_S)
    return max(SETTLED_MARKER_MIN_LIFETIME_S, math.ceil(2 * window))


def _xadd(event: list[str]) -> tuple[object, ...]:
    return ("XADD", keyspace.USAGE_STREAM, "*", *event)


def _verdict(reply: list, key: KeyRecord) -> Admitted | int:
    verdict, epoch = int(reply[0]), int(reply[1])
    if verdict == ADMITTED:
        return Admitted(
            int(reply[2]), int(reply[3]), rate_limit_headers(reply[5:11]), epoch, int(reply[4])
        )
    if verdict in (NOT_SEEDED, STALE):
        return verdict
    if verdict == CUT_OFF:
        raise authentication_failed("This API key has been revoked or has expired.")
    if verdict == SUSPENDED:
        raise ApiError(
            403,
            "This organization is suspended; contact the operator of this service.",
            type="permission_error",
            code="organization_suspended",
        )
    if verdict == NO_CREDIT:
        raise insufficient_credit(int(reply[2]), int(reply[3]), key)
    raise rate_limited(reply, key)


def insufficient_credit(balance_units: int, needed_units: int, key: KeyRecord) -> ApiError:
    balance = plain(units_to_usd(balance_units))
    needed = plain(units_to_usd(needed_units))
    floor = plain(units_to_usd(-key.spending_floor_units))
    detail = f" (credit limit {floor} USD)" if key.spending_floor_units else ""
    return ApiError(
        402,
        f"Insufficient credits: the balance is {balance} USD{detail} and this request needs "
        f"up to {needed} USD. Add credits or lower max_tokens.",
        type="insufficient_credits",
        code="insufficient_credits",
    )


def rate_limited(reply: list, key: KeyRecord) -> ApiError:
    kind, scope = _text(reply[2]), _text(reply[3])
    wait_ms, needed, limit = int(reply[4]), _text(reply[5]), int(reply[6])
    whose = "this API key" if scope == "key" else "your organization"
    if kind == "concurrency":
        message = f"Too many requests in flight: {whose} allows {limit} at once."
    elif wait_ms < 0:
        message = (
            f"This request needs {needed} tokens, more than the {limit} tokens per minute "
            f"{whose} allows. Lower max_tokens or the prompt size."
        )
    else:
        unit = "requests" if kind == "requests" else "tokens"
        message = f"Rate limit reached: {whose} allows {limit} {unit} per minute."
    retry_after = max(1, math.ceil(wait_ms / 1000)) if wait_ms >= 0 else 60
    return ApiError(
        429,
        f"{message} Retry after {retry_after}s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"retry-after": str(retry_after)},
        extra_headers=rate_limit_headers(reply[7:13]),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def rate_limit_headers(values: list[int]) -> list[tuple[bytes, bytes]]:
    """OpenAI's x-ratelimit-* headers from the script's report: limit, remaining and reset (ms)
    of the requests bucket, then of the tokens bucket (-1: no such limit)."""
    limit, remaining, reset_ms, token_limit, tokens_left, tokens_reset_ms = values
    headers: list[tuple[bytes, bytes]] = []
    if limit >= 0:
        headers += (
            (LIMIT_REQUESTS, b"%d" % limit),
            (REMAINING_REQUESTS, b"%d" % remaining),
            (RESET_REQUESTS, openai_duration(reset_ms)),
        )
    if token_limit >= 0:
        headers += (
            (LIMIT_TOKENS, b"%d" % token_limit),
            (REMAINING_TOKENS, b"%d" % tokens_left),
            (RESET_TOKENS, openai_duration(tokens_reset_ms)),
        )
    return headers


LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS, LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS = (
    f"x-ratelimit-{part}-{kind}".encode()
    for kind in ("requests", "tokens")
    for part in ("limit", "remaining", "reset")
)


def openai_duration(milliseconds: int) -> bytes:
    """OpenAI's reset format: `17ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if milliseconds < 1000:
        return b"%dms" % milliseconds if milliseconds > 0 else b"0ms"
    seconds, millis = divmod(milliseconds, 1000)
    if seconds < 60:
        return _seconds(seconds, millis)
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return b"%dm" % minutes + _seconds(seconds, millis)
    return b"%dh%dm" % divmod(minutes, 60) + _seconds(seconds, millis)


def _seconds(seconds: int, millis: int) -> bytes:
    """`7s`, `7.5s`, `7.25s`, `7.125s`: seconds with the milliseconds' significant digits."""
    if not millis:
        return b"%ds" % seconds
    if millis % 10:
        return b"%d.%03ds" % (seconds, millis)
    if millis % 100:
        return b"%d.%02ds" % (seconds, millis // 10)
    return b"%d.%ds" % (seconds, millis // 100)
