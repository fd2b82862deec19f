"""Test-database hygiene: find and end sessions that would keep the test database from dropping."""

import logging
import time
from pathlib import Path

from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger(__name__)
REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "stray-db-sessions.txt"
STRAYS = """
    SELECT pid, application_name, state, backend_start::text, left(query, 200)
    FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()
"""


def end_stray_database_sessions(connection: BaseDatabaseWrapper, grace_s: float = 5.0) -> None:
    """Close this process's pool, wait up to `grace_s` for other sessions on the test database
    to go (a stopped server's backends exit asynchronously), then end the rest."""
    if connection.vendor != "postgresql":
        return
    connection.close()
    connection.close_pool()  # idle pooled connections; ones a thread still holds stay open
    name = connection.settings_dict["NAME"]
    deadline = time.monotonic() + grace_s
    with connection._nodb_cursor() as cursor:
        while (strays := _strays(cursor, name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not strays:
            return
        lines = [f"stray session on {name}: {row!r}" for row in strays]
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text("\n".join(lines) + "\n")
        log.warning("\n".join(lines))
        for row in strays:
            cursor.execute("SELECT pg_terminate_backend(%s)", [row[0]])


def _strays(cursor: object, name: str) -> list[tuple]:
    cursor.execute(STRAYS, [name])  # type: ignore[attr-defined]
    return cursor.fetchall()  # type: ignore[attr-defined]
