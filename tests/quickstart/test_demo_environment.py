"""The demo's environment: embedded defaults, nothing leaking in from the caller's shell."""

from pathlib import Path

from apps.quickstart.environment import DemoPaths, demo_environment


def test_the_demo_gives_sign_ups_a_welcome_credit_and_ignores_the_callers_settings(
    tmp_path: Path,
) -> None:
    env = demo_environment(
        {"DATABASE_URL": "postgres://elsewhere/db", "WELCOME_CREDIT_USD": "999", "PATH": "/bin"},
        paths=DemoPaths(root=tmp_path),
        store_url="redis://127.0.0.1:7777/0",
        public_url="http://127.0.0.1:8000",
        secret_values={"SECRET_KEY": "s", "API_KEY_HMAC_SECRET": "h"},
    )
    assert env["WELCOME_CREDIT_USD"] == "5"
    assert env["DATABASE_URL"].startswith(f"sqlite:///{tmp_path / 'tollgate.sqlite3'}?")
    assert env["REDIS_URL"] == env["CELERY_BROKER_URL"] == "redis://127.0.0.1:7777/0"
    assert env["PATH"] == "/bin"
    assert env["DEBUG"] == "1"
