"""A strict Content-Security-Policy on every Django response.

Pages load scripts, styles, images and fonts only from this origin; no inline script or style
runs (htmx's own indicator styles are switched off in templates/dashboard/base.html, charts
draw with uPlot, which styles through the CSSOM). `connect-src 'self'` lets the playground
stream from /v1 on the same origin. A response that already has a policy keeps it.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    """Adds POLICY to every response that has no policy of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = POLICY
        return response
