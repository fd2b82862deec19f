"""Per-worker buffer of API key last-use times, pushed to Redis every few seconds."""

import asyncio
import logging
import time

from redis.exceptions import RedisError

from apps.hotstate import keyspace
from apps.hotstate.pipelined_redis import PipelinedRedis

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 5.0


class LastUsedMarks:
    def __init__(self, client: PipelinedRedis) -> None:
        self._client = client
        self._marks: dict[int, int] = {}

    def note(self, key_id: int) -> None:
        self._marks[key_id] = int(time.time() * 1000)

    async def flush(self) -> None:
        if not self._marks:
            return
        marks, self._marks = self._marks, {}
        try:
            fields = [part for pair in marks.items() for part in pair]
            await self._client.execute("HSET", keyspace.KEY_LAST_USED, *fields)
        except RedisError:
            log.warning("could not push %d key last-use marks to Redis", len(marks))

    async def run(self) -> None:
        """Flush forever (a background task of the worker)."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()
