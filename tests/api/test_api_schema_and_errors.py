"""The OpenAPI schema, the reference page, and the one error shape for every failure."""

import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from apps.api.schema import api_schema_settings
from apps.api.urls import v1_patterns
from tests.api.support import error_of, url

pytestmark = pytest.mark.django_db

ORG = "/api/v1/orgs/{org_id}/"
EXPECTED_OPERATIONS = {
    ("/api/v1/orgs/", "get"),
    (ORG, "get"),
    (ORG, "patch"),
    (ORG + "keys/", "get"),
    (ORG + "keys/", "post"),
    (ORG + "keys/{key_id}/", "get"),
    (ORG + "keys/{key_id}/revoke/", "post"),
    (ORG + "members/", "get"),
    (ORG + "members/{membership_id}/", "patch"),
    (ORG + "members/{membership_id}/", "delete"),
    (ORG + "leave/", "post"),
    (ORG + "invitations/", "get"),
    (ORG + "invitations/", "post"),
    (ORG + "invitations/{invitation_id}/", "delete"),
    ("/api/v1/invitations/accept/", "post"),
    (ORG + "usage/", "get"),
    (ORG + "usage/summary/", "get"),
    (ORG + "balance/", "get"),
    (ORG + "ledger/", "get"),
    (ORG + "tokens/", "get"),
    (ORG + "tokens/", "post"),
    (ORG + "tokens/{token_id}/revoke/", "post"),
}


@pytest.fixture
def schema() -> dict:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def test_the_schema_is_valid_openapi_3_with_every_operation(schema):
    validate_schema(schema)

    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= EXPECTED_OPERATIONS
    assert any(path.startswith("/api/v1/billing/") for path in schema["paths"])


def test_our_endpoints_describe_themselves_without_a_warning():
    ours = [p for p in v1_patterns if not str(p.pattern).startswith("billing/")]

    with api_schema_settings():
        generated = SchemaGenerator(patterns=[path("api/v1/", include(ours))]).get_schema(
            request=None, public=True
        )

    assert len(generated["paths"]) == 17
    assert not GENERATOR_STATS, "drf-spectacular warned about the management API's views"


def test_the_schema_documents_auth_errors_and_money_as_strings(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["managementToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A management token (tg_mgmt_…) created by an owner.",
    }
    create = schema["paths"][ORG + "keys/"]["post"]
    assert {p["name"] for p in create["parameters"]} >= {"Idempotency-Key", "org_id"}
    assert create["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    balance = schema["components"]["schemas"]["Balance"]["properties"]["balance"]
    assert (balance["type"], balance["format"]) == ("string", "decimal")
    listing = schema["paths"][ORG + "usage/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "cursor",
        "limit",
        "key",
        "model",
        "since",
        "until",
    }


def test_the_schema_is_also_served_as_yaml():
    response = APIClient().get("/api/schema/?format=yaml")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_reference_page_renders_every_operation_without_scripts():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script" not in html
    assert "style=" not in html
    for operation_id in ("keys_create", "usage_summary", "invitations_accept", "tokens_revoke"):
        assert f'id="{operation_id}"' in html
    assert 'href="#schema-APIKeyCreated"' in html


def test_unknown_paths_get_the_error_shape(alice):
    response = alice.client.get("/api/v2/anything/")

    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_path"


def test_a_missing_trailing_slash_is_pointed_out(labs, alice):
    response = alice.client.get(url(labs, "keys"))

    assert response.status_code == 404
    assert error_of(response)["message"].endswith("keys/ (with the trailing slash)?")


def test_a_wrong_method_gets_the_error_shape(labs, alice):
    response = alice.client.delete(url(labs, "keys/"))

    assert response.status_code == 405
    error = error_of(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", "method_not_allowed")


def test_malformed_json_is_400(labs, alice):
    response = alice.client.post(url(labs, "keys/"), "{not json", content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_a_form_body_is_415(labs, alice):
    response = alice.client.post(url(labs, "keys/"), {"name": "x"})

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_an_unexpected_failure_is_a_500_in_the_error_shape(labs, alice, monkeypatch, caplog):
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("apps.api.views.money.balance_of", explode)

    response = alice.client.get(url(labs, "balance/"))

    assert response.status_code == 500
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", None)
    assert "boom" not in error["message"]
    assert "management API: unhandled error" in caplog.text
