"""`GET /metrics`: this worker's counters in Prometheus' text format.

Counters are per process (each line carries the worker's pid); a scraper that reaches
several workers sums them. Money and limits never live here: they are in Redis and
PostgreSQL.
"""

import os
from collections import Counter

from apps.gateway.asgi_io import Send, send_response

REQUESTS = Counter[int]()  # HTTP status -> /v1 responses


def count_response(status: int) -> None:
    REQUESTS[status] += 1


async def serve_metrics(send: Send, redis_failures: int) -> None:
    pid = os.getpid()
    lines = [
        "# HELP tollgate_redis_failures_total Failed Redis calls: admission, settlement, peeks.",
        "# TYPE tollgate_redis_failures_total counter",
        f'tollgate_redis_failures_total{{pid="{pid}"}} {redis_failures}',
        "# HELP tollgate_v1_responses_total Responses of the /v1 API by status.",
        "# TYPE tollgate_v1_responses_total counter",
    ]
    lines += [
        f'tollgate_v1_responses_total{{pid="{pid}",status="{status}"}} {count}'
        for status, count in sorted(REQUESTS.items())
    ]
    body = ("\n".join(lines) + "\n").encode()
    await send_response(send, 200, body, [(b"content-type", b"text/plain; version=0.0.4")])
