"""Read helpers for the catalog, shaped for the gateway's routing."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.catalog.models import Deployment, Model

ENABLED_DEPLOYMENTS_ATTR = "enabled_deployments"


def enabled_models_with_deployments() -> QuerySet[Model]:
    """Enabled models by name, each with ``enabled_deployments``: a list of its routable
    deployments (enabled, on an enabled provider, in id order) with ``provider`` loaded.

    Evaluating it runs exactly two queries (models; deployments joined to providers) however
    many models there are. Deployments of weight 0 are included; the router skips them. A model
    whose deployments are all unroutable is still listed, with an empty list.
    """
    routable = (
        Deployment.objects.filter(enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("pk")
    )
    return (
        Model.objects.filter(enabled=True)
        .order_by("name")
        .prefetch_related(
            Prefetch("deployments", queryset=routable, to_attr=ENABLED_DEPLOYMENTS_ATTR)
        )
    )


def default_model() -> Model | None:
    """The enabled model marked ``is_default``, or None when there is none (one query)."""
    return Model.objects.filter(is_default=True, enabled=True).first()
