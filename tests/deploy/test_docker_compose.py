"""docker-compose.yml cannot run here (no Docker engine), so it is checked by reading it:
every service has a health check, and every command it runs exists in this project."""

import importlib
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from apps.catalog.catalog_file import load_catalog_file

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OUR_SERVICES = sorted(
    name for name, spec in SERVICES.items() if spec.get("image") == "tollgate:latest"
)


def import_target(target: str) -> object:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def manage_commands(command: list[str]) -> list[str]:
    """The management command names a service runs, including inside `sh -c`."""
    words = " ".join(command).replace("&&", " ").split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "manage.py"]


def test_the_production_shape_is_complete():
    assert {"postgres", "redis", "web", "worker", "beat", "upstream"} <= set(SERVICES)
    assert OUR_SERVICES == ["beat", "migrate", "upstream", "web", "worker"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_long_running_service_has_a_health_check(name):
    check = SERVICES[name]["healthcheck"]
    assert check.get("disable") is True if name == "migrate" else check["test"][0] == "CMD"


def test_web_serves_the_asgi_application_with_uvicorn_workers():
    command = SERVICES["web"]["command"]
    assert command[:2] == ["gunicorn", "config.asgi:application"]
    assert command[command.index("-k") + 1] == "uvicorn_worker.UvicornWorker"
    assert callable(import_target("config.asgi:application"))
    assert importlib.import_module("uvicorn_worker").UvicornWorker


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_services_point_at_the_celery_app(name):
    command = SERVICES[name]["command"]
    assert command[0] == "celery"
    app = import_target(command[command.index("-A") + 1])
    assert app.main == "tollgate"
    assert command[3] == name


@pytest.mark.parametrize("name", ["migrate", "upstream"])
def test_management_commands_exist(name):
    commands = manage_commands(SERVICES[name]["command"])
    assert commands
    assert set(commands) <= set(get_commands())


def test_the_catalog_the_compose_file_loads_is_valid():
    command = " ".join(SERVICES["migrate"]["command"])
    path = command.split("sync_catalog ")[1].split()[0].replace("/app/", "")
    spec = load_catalog_file(ROOT / path)
    assert spec.default_model == "default"
    assert spec.providers[0].base_url == "http://upstream:9100/v1"


def test_services_wait_for_healthy_dependencies():
    app_depends = COMPOSE["x-app"]["depends_on"]
    assert app_depends == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_image_installs_from_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    assert (ROOT / "uv.lock").is_file()
