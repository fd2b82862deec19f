# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
UV := .venv/bin/uv
export UV_PROJECT_ENVIRONMENT := .venv

# Test settings: real PostgreSQL and Redis on this machine (override on the command line).
TEST_ENV := DEBUG=0 SECRET_KEY=test-secret-key API_KEY_HMAC_SECRET=test-hmac-secret \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tollgate} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0

.PHONY: demo test lint install

$(UV):
	$(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check uv

install: $(UV)
	$(UV) sync --frozen --quiet

## Start the whole platform on embedded defaults (SQLite, embedded Redis-compatible store).
demo: install
	DEBUG=1 .venv/bin/python manage.py demo

## Linters, migration check and the whole test suite against real PostgreSQL and Redis.
test: install
	@createdb -h 127.0.0.1 -U postgres tollgate 2>/dev/null || true  # Django's checks connect to it
	@mkdir -p var/static
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(TEST_ENV) $(UV) run --frozen python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .
