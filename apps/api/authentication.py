"""How the management API knows who is calling: a management token or a signed-in session.

`Authorization: Bearer tg_mgmt_…` authenticates as the token's creator acting through the
token (request.auth is the ManagementToken); without that header the session cookie is used,
and DRF's SessionAuthentication enforces CSRF on unsafe methods.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.api.models import ManagementToken
from apps.api.services import MANAGEMENT_TOKEN_PREFIX, authenticate_management_token


class ManagementTokenAuthentication(BaseAuthentication):
    """Bearer management tokens. Any other bearer value is refused, never passed on."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ManagementToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Malformed Authorization header: use 'Bearer <management token>'."
            )
        secret = parts[1].decode("latin-1")
        if not secret.startswith(MANAGEMENT_TOKEN_PREFIX):
            raise AuthenticationFailed(
                f"The management API needs a management token ({MANAGEMENT_TOKEN_PREFIX}…); "
                "inference keys work only on /v1."
            )
        token = authenticate_management_token(secret)
        if token is None:
            raise AuthenticationFailed("Invalid, revoked or expired management token.")
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="management api"'


class ManagementTokenScheme(OpenApiAuthenticationExtension):
    """Describes ManagementTokenAuthentication in the OpenAPI schema."""

    target_class = ManagementTokenAuthentication
    name = "managementToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the HTTP scheme name, not a secret
        )
        scheme["description"] = "A management token (tg_mgmt_…) created by an owner."
        return scheme
