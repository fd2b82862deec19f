"""The public catalog: models with prices per million tokens and context sizes."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.catalog.models import Model


def models_and_pricing(request: HttpRequest) -> HttpResponse:
    """Every enabled model, default first; anyone may look."""
    models = Model.objects.filter(enabled=True).order_by("-is_default", "name")
    return render(request, "dashboard/models.html", {"models": models})
