"""Side effects that follow a committed change: queued tasks and emails."""

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger(__name__)


def after_commit(func: Callable[..., object], *args: object) -> None:
    """Call `func(*args)` once the current transaction commits (at once outside one). A failure
    is logged, never raised: the committed change stands, and the beat sweeps retry the work
    (queued events, unpushed invoices, pending recharges)."""

    def run() -> None:
        try:
            func(*args)
        except Exception:  # a broker or mail outage must not fail a committed change
            log.exception("After-commit work %s%r failed", getattr(func, "__name__", func), args)

    transaction.on_commit(run)
