"""The one error shape of /v1: `{"error": {"message", "type", "param", "code"}}`."""

from typing import Any

import orjson


class ApiError(Exception):
    """An error answered to the client with an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra_headers = extra_headers or []

    def payload(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


def invalid_param(param: str, message: str) -> ApiError:
    return ApiError(422, message, param=param, code="invalid_value")


def authentication_failed(message: str) -> ApiError:
    return ApiError(401, message, type="authentication_error", code="invalid_api_key")


def upstream_failed(message: str) -> ApiError:
    return ApiError(502, message, type="upstream_error", code="upstream_error")


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, message, type="service_unavailable", code="service_unavailable")
