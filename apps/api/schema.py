"""OpenAPI helpers: the schema's settings and the error responses each endpoint documents."""

from collections.abc import Iterator
from contextlib import contextmanager

from drf_spectacular import plumbing
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from apps.api.errors import ErrorSerializer
from apps.api.idempotency import HEADER

# Applied by /api/schema/ and /api/docs/ on top of SPECTACULAR_SETTINGS (the same values belong
# there too, so that `manage.py spectacular` agrees).
SCHEMA_SETTINGS = {
    "DESCRIPTION": (
        "Manage a Tollgate organization: API keys, members, invitations, usage, balance, "
        "ledger, management tokens, top-ups and invoices. See /api/docs/."
    ),
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.tenants.models.Role",
        "TokenRoleEnum": "apps.api.models.TokenRole",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,
}


@contextmanager
def api_schema_settings() -> Iterator[None]:
    """Generate schemas with SCHEMA_SETTINGS applied."""
    with patched_settings(SCHEMA_SETTINGS):
        _forget_enum_names()
        try:
            yield
        finally:
            _forget_enum_names()


def _forget_enum_names() -> None:
    # drf-spectacular caches ENUM_NAME_OVERRIDES per language, not per settings patch.
    cached = getattr(plumbing, "_load_enum_name_overrides", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


ERROR_DESCRIPTIONS = {
    401: "Not signed in, or an invalid, revoked or expired management token.",
    403: "Signed in, but the role (or a management token) may not do this; or CSRF failed.",
    404: "No such organization or object for this caller (non-members always get 404).",
    409: "Conflicts with the current state, or the idempotency key was used for another request.",
    422: "A field or query parameter is invalid; `param` names it.",
}

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe: the same key and body within 24 hours replays the first response "
        "(header Idempotent-Replayed: true; secrets as null); another body gets 409."
    ),
)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for these statuses; 401 and 404 are always possible under /orgs."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in sorted({401, *statuses})
    }
