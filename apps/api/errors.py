"""The one error shape of the management API, the same as /v1's:
`{"error": {"message", "type", "param", "code"}}`.

`api_exception_handler` turns every exception a view raises into that shape: DRF's own
(authentication, permissions, parsing, validation), Django's Http404 and PermissionDenied, the
domain errors of our services, and anything unexpected (500, logged with its traceback).
"""

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from apps.limits.services import InvalidLimitError
from apps.tenants.services import (
    InvitationEmailMismatchError,
    InvitationInvalidError,
    MembershipRuleError,
    OrganizationNameTakenError,
)

log = logging.getLogger(__name__)

TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
    500: "server_error",
}
# A row that vanished between the lookup and the change (deleted concurrently) is a 404.
NOT_FOUND = (Http404, ObjectDoesNotExist)


class Conflict(exceptions.APIException):
    """409: the request clashes with the current state (or an earlier use of its key)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ErrorBodySerializer(serializers.Serializer):
    """The fields of an error (schema only)."""

    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """Every error response (schema only)."""

    error = ErrorBodySerializer()


def error_response(
    status_code: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A response in the error shape; the type follows from the status."""
    body = {
        "error": {
            "message": message,
            "type": TYPES.get(status_code, "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }
    return Response(body, status=status_code, headers=dict(headers or {}))


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER for the management API (set on our views)."""
    set_rollback()
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        log.error("management API: unhandled error", exc_info=exc)
        return error_response(500, "The server had an error processing your request.", code=None)
    if isinstance(api_exc, exceptions.ValidationError):
        param, detail = first_error(api_exc.detail)
        message = f"{param}: {detail}" if param else str(detail)
        return error_response(422, message, code="invalid_value", param=param)
    headers = {}
    if getattr(api_exc, "auth_header", None):
        headers["WWW-Authenticate"] = api_exc.auth_header
    if getattr(api_exc, "wait", None):
        headers["Retry-After"] = str(int(api_exc.wait))
    detail = api_exc.detail
    code = getattr(detail, "code", None) or api_exc.default_code
    return error_response(api_exc.status_code, str(detail), code=str(code), headers=headers)


def first_error(detail: Any, path: str = "") -> tuple[str | None, Any]:
    """The first (param, message) of DRF's nested validation detail: "allowed_models[0]"."""
    if isinstance(detail, Mapping):
        name, inner = next(iter(detail.items()))
        if name == "non_field_errors":
            return first_error(inner, path)
        step = f"[{name}]" if isinstance(name, int) else f".{name}" if path else str(name)
        return first_error(inner, path + step)
    if isinstance(detail, list) and detail:
        return first_error(detail[0], path)
    return (path or None), detail


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    """The APIException for `exc`, or None when it is unexpected (a bug)."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, NOT_FOUND):
        return exceptions.NotFound(str(exc) if isinstance(exc, Http404) and exc.args else None)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return _domain_error(exc)


def _domain_error(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, InvitationEmailMismatchError):
        return exceptions.PermissionDenied(str(exc), code=exc.code)
    if isinstance(exc, InvitationInvalidError):
        return exceptions.NotFound(str(exc), code=exc.code)
    if isinstance(exc, MembershipRuleError | OrganizationNameTakenError):
        return Conflict(str(exc), code=exc.code)
    if isinstance(exc, InvalidLimitError):
        return exceptions.ValidationError(str(exc))
    return None
