"""The OpenAPI schema, the HTML reference built from it, and JSON 404s for unknown paths."""

from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.api.docs import build_schema, reference
from apps.api.errors import api_exception_handler
from apps.api.schema import api_schema_settings


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 document: JSON by default, YAML with `?format=yaml`."""

    renderer_classes = (OpenApiJsonRenderer, OpenApiYamlRenderer)
    permission_classes = (AllowAny,)

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        with api_schema_settings():
            return super().get(request, *args, **kwargs)


@cache
def _reference() -> dict[str, Any]:
    return reference(build_schema())


@require_GET
def docs_page(request: HttpRequest) -> HttpResponse:
    """The reference page: every endpoint, its parameters, bodies and errors."""
    return render(request, "api/docs.html", _reference())


class UnknownPathView(APIView):
    """Any other path under /api/: 404 in the API's error shape, not an HTML page."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    renderer_classes = (JSONRenderer,)
    schema = None

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        hint = "see /api/docs/."
        if not request.path.endswith("/") and _is_endpoint(request.path + "/"):
            hint = f"did you mean {request.path}/ (with the trailing slash)?"
        raise NotFound(f"No endpoint at {request.path}; {hint}", code="unknown_path")


def _is_endpoint(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.url_name != "unknown"
