"""Prepare the isolated bench database, Redis db and catalog; print a fresh API key as JSON.

    uv run python -m bench.setup_bench --upstream-base-url http://127.0.0.1:9190/v1

Creates the PostgreSQL database `tollgate_bench` if missing and migrates it, flushes Redis
db 14, points provider `bench-demo` at the upstream, makes model `default` (the default) served
by it, gives organization `Bench` no plan (no rate limits) and 100,000 USD of credit when
the ledger exists, and creates a new API key for it.
The environment of bench.common.BENCH_ENV is applied before Django starts.
"""

from __future__ import annotations

import argparse
import json
import os
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from bench.common import BENCH_DATABASE_NAME, BENCH_ENV

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PROVIDER_NAME = "bench-demo"
MODEL_NAME = "default"
UPSTREAM_MODEL = "demo-small"
ORG_NAME = "Bench"
MIN_CREDIT_USD = Decimal(100_000)  # 1e15 units: exact in admission's Lua numbers


def ensure_database(name: str = BENCH_DATABASE_NAME) -> bool:
    """Create the database if it does not exist; True if it was created."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def setup_django() -> None:
    os.environ.update(BENCH_ENV)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def install_catalog(upstream_base_url: str) -> None:
    """Provider `bench-demo` -> model `default` (the only default), one deployment."""
    from django.db import transaction

    from apps.catalog.models import Deployment, Model, Provider

    with transaction.atomic():
        provider, _ = Provider.objects.update_or_create(
            name=PROVIDER_NAME,
            defaults={"base_url": upstream_base_url, "timeout_s": 60, "enabled": True},
        )
        Model.objects.exclude(name=MODEL_NAME).update(is_default=False)
        model, _ = Model.objects.update_or_create(
            name=MODEL_NAME,
            defaults={
                "is_default": True,
                "enabled": True,
                "input_price_per_mtok": Decimal("0.10"),
                "output_price_per_mtok": Decimal("0.40"),
            },
        )
        Deployment.objects.filter(model=model).exclude(provider=provider).update(enabled=False)
        Deployment.objects.update_or_create(
            model=model,
            provider=provider,
            upstream_model=UPSTREAM_MODEL,
            defaults={"enabled": True, "weight": 1},
        )


UNREACHABLE_LIMIT = 1_000_000_000  # every bucket and in-flight set is checked, none refuses


def bench_organization(*, limits: bool = False, name: str = ORG_NAME) -> Any:
    """Organization `name` with at least MIN_CREDIT_USD: no plan (no rate limits), or with
    `limits` a plan whose limits are checked on every request but never reached."""
    from apps.limits.models import Plan
    from apps.tenants.models import Organization
    from apps.tenants.services import create_organization

    organization = Organization.objects.filter(name=name).first()
    if organization is None:
        slug = name.lower().replace(" ", "-")
        organization = create_organization(name, owner_email=f"{slug}@example.com")
    plan = None
    if limits:
        plan, _ = Plan.objects.get_or_create(
            name="bench-unreachable",
            defaults={
                "rpm": UNREACHABLE_LIMIT,
                "tpm": UNREACHABLE_LIMIT,
                "max_concurrent": UNREACHABLE_LIMIT,
            },
        )
    organization.plan = plan
    organization.save(update_fields=["plan"])
    _top_up(organization)
    return organization


def _top_up(organization: Any) -> None:
    """Grant credits up to MIN_CREDIT_USD when the ledger exists (it prices every request)."""
    try:
        from apps.ledger.selectors import ledger_balance
        from apps.ledger.services import grant_credits
    except ImportError:
        return
    balance = ledger_balance(organization)
    if balance < MIN_CREDIT_USD:
        grant_credits(organization, MIN_CREDIT_USD - balance, reason="benchmark credit")


def fresh_api_key(organization: Any, *, limits: bool = False) -> str:
    """A new key, with limits of its own (never reached) if `limits` (earlier bench keys stay,
    unused)."""
    from apps.keys.services import create_api_key

    own = {"rpm": UNREACHABLE_LIMIT, "tpm": UNREACHABLE_LIMIT, "max_concurrent": UNREACHABLE_LIMIT}
    _, secret = create_api_key(organization, name="bench", **(own if limits else {}))
    return secret


def flush_redis() -> None:
    from apps.hotstate.clients import sync_redis

    sync_redis().flushdb()


def prepare(upstream_base_url: str, *, limits: bool = False) -> dict[str, str]:
    created = ensure_database()
    setup_django()
    migrate()
    install_catalog(upstream_base_url)
    flush_redis()
    limited = bench_organization(limits=True, name=f"{ORG_NAME} limited")
    return {
        "api_key": fresh_api_key(bench_organization(limits=limits), limits=limits),
        "api_key_limited": fresh_api_key(limited, limits=True),  # for bench_limits_ab
        "model": MODEL_NAME,
        "database": BENCH_DATABASE_NAME,
        "database_created": str(created).lower(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-base-url", required=True, help="e.g. http://127.0.0.1:9190/v1")
    parser.add_argument("--limits", action="store_true", help="check every limit (none reached)")
    args = parser.parse_args()
    print(json.dumps(prepare(args.upstream_base_url, limits=args.limits)))


if __name__ == "__main__":
    main()
