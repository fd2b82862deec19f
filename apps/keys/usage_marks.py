"""`last_used_at` without a database write per request.

Gateway workers note the time of each key's latest request in memory and push those marks to
one Redis hash every few seconds; a Celery beat task drains the hash into PostgreSQL.
"""

from datetime import UTC, datetime

from django.db.models import Q

from apps.hotstate import keyspace
from apps.hotstate.clients import sync_redis
from apps.keys.models import APIKey

DRAIN_SCRIPT = """
local marks = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return marks
"""


def drain_last_used() -> int:
    """Move every pending mark into `APIKey.last_used_at` (never moving it backwards)."""
    client = sync_redis()
    flat = client.eval(DRAIN_SCRIPT, 1, keyspace.KEY_LAST_USED)
    marks = {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
    for key_id, unix_ms in marks.items():
        moment = datetime.fromtimestamp(unix_ms / 1000, tz=UTC)
        APIKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment), pk=key_id
        ).update(last_used_at=moment)
    return len(marks)
