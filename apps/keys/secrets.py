"""How API key secrets are made and hashed.

A secret is `API_KEY_PREFIX` + 40 characters from `secrets.token_urlsafe`. The database keeps
HMAC-SHA256(API_KEY_HMAC_SECRET, secret) as hex and a short visible prefix. Lookup is by the
HMAC, so a wrong key costs one indexed read and leaks nothing about stored ones.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

HASH_VERSION = 1
VISIBLE_PREFIX_CHARS = 6


def generate_secret() -> str:
    return settings.API_KEY_PREFIX + secrets.token_urlsafe(30)


def hash_secret(secret: str) -> str:
    key = settings.API_KEY_HMAC_SECRET.encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def visible_prefix(secret: str) -> str:
    """The part shown in lists, e.g. `tg_live_ab12cd`."""
    return secret[: len(settings.API_KEY_PREFIX) + VISIBLE_PREFIX_CHARS]


def looks_like_key(secret: str) -> bool:
    return secret.startswith(settings.API_KEY_PREFIX) and 30 <= len(secret) <= 128
