"""Dashboard and account URLs, mounted at "/" by config/urls.py.

Organization pages live under /orgs/<org_id>/: the organization comes from the URL and is
resolved through the user's membership (apps/dashboard/access.py)."""

from django.urls import include, path

from apps.dashboard.views import (
    billing,
    catalog,
    home,
    invitations,
    keys,
    organization,
    overview,
    playground,
    usage,
)

org_patterns = [
    path("", overview.overview, name="overview"),
    path("keys/", keys.keys, name="keys"),
    path("keys/new/", keys.create_key, name="create_key"),
    path("keys/<int:key_id>/revoke/", keys.revoke_key, name="revoke_key"),
    path("usage/", usage.usage, name="usage"),
    path("usage.csv", usage.usage_csv, name="usage_csv"),
    path("billing/", billing.billing, name="billing"),
    path("playground/", playground.playground, name="playground"),
    path("playground/key/", playground.playground_key, name="playground_key"),
    path("settings/", organization.settings_page, name="settings"),
    path("settings/rename/", organization.rename, name="rename"),
    path("settings/leave/", organization.leave, name="leave"),
    path("members/<int:membership_id>/role/", organization.change_role, name="change_role"),
    path("members/<int:membership_id>/remove/", organization.remove, name="remove_member"),
    path("invitations/", organization.invite, name="invite"),
    path(
        "invitations/<int:invitation_id>/cancel/",
        organization.cancel_invitation,
        name="cancel_invitation",
    ),
]

dashboard_patterns = [
    path("", home.home, name="home"),
    path("models/", catalog.models_and_pricing, name="models"),
    path("orgs/", home.organizations, name="organizations"),
    path("orgs/<int:org_id>/", include(org_patterns)),
    # The exact path apps.tenants.services.invitation_accept_url() mails (no trailing slash).
    path("invitations/<str:token>/accept", invitations.accept, name="accept_invitation"),
]

# Two top-level namespaces, "accounts" and "dashboard" (config/urls.py includes this module
# without one).
urlpatterns = [
    path("accounts/", include("apps.accounts.urls")),
    path("", include((dashboard_patterns, "dashboard"))),
]
