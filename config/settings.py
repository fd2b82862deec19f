"""Tollgate settings, read from environment variables (each documented in README.md)."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-only-secret-key"  # noqa: S105 - DEBUG only

# API keys are stored as HMAC-SHA256 under this secret, never SECRET_KEY, so rotating the
# session secret never invalidates every customer's key. The version is stored on each key.
API_KEY_HMAC_SECRET = os.environ.get("API_KEY_HMAC_SECRET", "")
if not API_KEY_HMAC_SECRET:
    if not DEBUG:
        raise ImproperlyConfigured("API_KEY_HMAC_SECRET must be set when DEBUG is off.")
    API_KEY_HMAC_SECRET = "insecure-development-only-hmac-secret"  # noqa: S105 - DEBUG only
API_KEY_PREFIX = os.environ.get("API_KEY_PREFIX", "tg_live_")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "apps.accounts",
    "apps.tenants",
    "apps.keys",
    "apps.limits",
    "apps.catalog",
    "apps.metering",
    "apps.ledger",
    "apps.hotstate",
    "apps.gateway",
    "apps.demo_upstream",
    "apps.quickstart",
    "apps.audit",
    "apps.billing",
    "apps.api",
    "apps.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.dashboard.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'tollgate.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if os.environ.get("DATABASE_TEST_NAME"):  # lets parallel test runs keep apart
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DATABASE_TEST_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3's pool, owned by Django (5.1+); persistent connections must stay off with it.
    DATABASES["default"]["OPTIONS"] = {
        # Shown in pg_stat_activity, so an operator can tell which process holds a session.
        "application_name": os.environ.get(
            "DATABASE_APPLICATION_NAME", f"tollgate pid {os.getpid()}"
        ),
        "pool": {
            "min_size": env_int("DATABASE_POOL_MIN", 2),
            "max_size": env_int("DATABASE_POOL_MAX", 10),
            "timeout": 10,
        },
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG  # the demo serves static files without collectstatic

# The public address of this deployment, used in emails and the dashboard's code snippets.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Email: the console in DEBUG, SMTP otherwise.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tollgate <no-reply@localhost>")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", "")  # for the file-based backend (tests)

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Money in: Stripe. Without STRIPE_SECRET_KEY the platform runs and the buy button explains.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # empty: Stripe's own API
BILLING_CURRENCY = "usd"
TOPUP_MIN_USD = os.environ.get("TOPUP_MIN_USD", "5")
TOPUP_MAX_USD = os.environ.get("TOPUP_MAX_USD", "10000")
BILLING_PERIOD = os.environ.get("BILLING_PERIOD", "monthly")  # monthly, weekly or daily (UTC)
BILLING_CLOSE_GRACE_S = env_int("BILLING_CLOSE_GRACE_S", 3600)
STRIPE_CONNECT_TIMEOUT_S = float(os.environ.get("STRIPE_CONNECT_TIMEOUT_S", "5"))
STRIPE_READ_TIMEOUT_S = float(os.environ.get("STRIPE_READ_TIMEOUT_S", "30"))
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_WEBHOOK_TOLERANCE_S = env_int("STRIPE_WEBHOOK_TOLERANCE_S", 300)
STRIPE_EVENT_MAX_ATTEMPTS = env_int("STRIPE_EVENT_MAX_ATTEMPTS", 8)
AUTO_RECHARGE_MAX_PER_HOUR = env_int("AUTO_RECHARGE_MAX_PER_HOUR", 3)
INVOICE_NUMBER_PREFIX = os.environ.get("INVOICE_NUMBER_PREFIX", "TG-")
CREDIT_NOTE_NUMBER_PREFIX = os.environ.get("CREDIT_NOTE_NUMBER_PREFIX", "TG-CN-")
INVOICE_DAYS_UNTIL_DUE = env_int("INVOICE_DAYS_UNTIL_DUE", 30)
WELCOME_CREDIT_USD = os.environ.get("WELCOME_CREDIT_USD", "0")
OPERATOR_COMPANY_NAME = os.environ.get("OPERATOR_COMPANY_NAME", "Tollgate operator")
OPERATOR_COMPANY_ADDRESS = os.environ.get("OPERATOR_COMPANY_ADDRESS", "")
OPERATOR_COMPANY_EMAIL = os.environ.get("OPERATOR_COMPANY_EMAIL", "")
OPERATOR_COMPANY_TAX_ID = os.environ.get("OPERATOR_COMPANY_TAX_ID", "")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.ManagementTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate management API",
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.tenants.models.Role",
        "TokenRoleEnum": "apps.api.models.TokenRole",
    },
}

# Redis: token buckets, hot counters, key revocations and the usage hand-off.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TIMEOUT_S = float(os.environ.get("REDIS_TIMEOUT_S", "1.0"))
REDIS_SETTLE_TIMEOUT_S = float(os.environ.get("REDIS_SETTLE_TIMEOUT_S", "10"))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "flush-key-last-used": {"task": "keys.flush_last_used", "schedule": 60.0},
    # `expires` keeps ingest runs from piling up in the queue while one is draining.
    "metering-ingest-usage": {
        "task": "metering.ingest_usage",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    "ledger-reconcile": {"task": "ledger.reconcile", "schedule": 300.0},
    "purge-idempotency-records": {"task": "api.purge_idempotency_records", "schedule": 3600.0},
    "billing-check-balances": {"task": "billing.check_balances", "schedule": 30.0},
    "billing-sweep-stripe-events": {"task": "billing.sweep_stripe_events", "schedule": 300.0},
    "billing-close-periods": {"task": "billing.close_periods", "schedule": 900.0},
    "billing-push-unfinished-invoices": {
        "task": "billing.push_unfinished_invoices",
        "schedule": 600.0,
    },
    "billing-reconcile-invoices": {"task": "billing.reconcile_invoices", "schedule": 3600.0},
}

# Metering: the Celery ingest of the usage stream, and reconciliation (docs/money.md).
METERING_CLAIM_IDLE_MS = env_int("METERING_CLAIM_IDLE_MS", 60_000)
METERING_BATCH_SIZE = env_int("METERING_BATCH_SIZE", 1000)
METERING_TIME_BUDGET_S = float(os.environ.get("METERING_TIME_BUDGET_S", "5"))
RECONCILE_RECHECK_DELAY_S = float(os.environ.get("RECONCILE_RECHECK_DELAY_S", "2"))

# The /v1 gateway.
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 2 * 1024 * 1024)
GATEWAY_KEY_CACHE_TTL_S = float(os.environ.get("GATEWAY_KEY_CACHE_TTL_S", "30"))
GATEWAY_CATALOG_CACHE_TTL_S = float(os.environ.get("GATEWAY_CATALOG_CACHE_TTL_S", "5"))
GATEWAY_CONNECT_TIMEOUT_S = float(os.environ.get("GATEWAY_CONNECT_TIMEOUT_S", "5"))

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# When Redis cannot be reached, refuse /v1 requests with 503 (False) or admit them without
# limits and revocation checks (True). See docs/architecture.md for why closed is the default.
RATE_LIMIT_FAIL_OPEN = env_bool("RATE_LIMIT_FAIL_OPEN")

# Credit holds: a request the balance cannot cover for its prompt plus this many answer tokens
# gets 402. A hold (and an in-flight slot) of a worker that died is released after this long.
GATEWAY_MIN_ANSWER_TOKENS = env_int("GATEWAY_MIN_ANSWER_TOKENS", 16)
GATEWAY_HOLD_LIFETIME_S = env_int("GATEWAY_HOLD_LIFETIME_S", 900)
