"""Login rate limiting against password guessing, kept in Redis so every worker agrees.

Failed attempts are counted per (account, client address), per account and per client
address in fixed windows. Once any count reaches its limit, every attempt of that kind is
refused until its window ends, correct password or not. A successful login clears the
(account, address) count. The rules are data: see RULES.

If Redis cannot be reached, logins are not throttled (a warning is logged): refusing every
login while Redis is down would lock out every user for an outage they did not cause.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import Final

import redis

from apps.hotstate.clients import sync_redis

log = logging.getLogger(__name__)

KEY_PREFIX: Final[str] = "{tollgate}:login-fail"


@dataclass(frozen=True)
class Rule:
    """At most `limit` failed logins per `window_s` seconds for one `scope`."""

    scope: str  # "account_ip", "account" or "ip"
    limit: int
    window_s: int


RULES: Final[tuple[Rule, ...]] = (
    Rule("account_ip", limit=5, window_s=15 * 60),
    Rule("account", limit=20, window_s=15 * 60),
    Rule("ip", limit=100, window_s=15 * 60),
)


def _subject(rule: Rule, email: str, ip: str) -> str:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    parts = {"account_ip": f"{account}:{ip}", "account": account, "ip": ip}
    return f"{KEY_PREFIX}:{rule.scope}:{parts[rule.scope]}"


def seconds_locked(email: str, ip: str) -> int:
    """Seconds until this account may try again from this address; 0 when it may now."""
    try:
        pipeline = sync_redis().pipeline(transaction=False)
        for rule in RULES:
            key = _subject(rule, email, ip)
            pipeline.get(key)
            pipeline.ttl(key)
        replies = pipeline.execute()
    except redis.RedisError as error:
        log.warning("login throttle unavailable, not throttling: %s", error)
        return 0
    waits = [0]
    for rule, count, ttl in zip(RULES, replies[0::2], replies[1::2], strict=True):
        if count is not None and int(count) >= rule.limit:
            waits.append(max(int(ttl), 1))
    return max(waits)


def record_failure(email: str, ip: str) -> None:
    """Count one failed login against every rule; a window starts at its first failure."""
    try:
        pipeline = sync_redis().pipeline(transaction=False)
        for rule in RULES:
            key = _subject(rule, email, ip)
            pipeline.incr(key)
            pipeline.expire(key, rule.window_s, nx=True)
        pipeline.execute()
    except redis.RedisError as error:
        log.warning("login throttle unavailable, failure not counted: %s", error)


def record_success(email: str, ip: str) -> None:
    """Forget this address's failures for this account (the others keep counting)."""
    try:
        sync_redis().delete(_subject(RULES[0], email, ip))
    except redis.RedisError as error:
        log.warning("login throttle unavailable: %s", error)
