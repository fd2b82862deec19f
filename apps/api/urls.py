"""The management API, mounted at /api/ (config/urls.py). Version 1 lives under /api/v1/."""

from django.urls import include, path, re_path

from apps.api.views.keys import KeyDetailView, KeyListView, KeyRevokeView
from apps.api.views.members import (
    InvitationAcceptView,
    InvitationDetailView,
    InvitationListView,
    LeaveView,
    MemberDetailView,
    MemberListView,
)
from apps.api.views.money import BalanceView, LedgerListView
from apps.api.views.orgs import OrganizationDetailView, OrganizationListView
from apps.api.views.reference import SchemaView, UnknownPathView, docs_page
from apps.api.views.tokens import TokenListView, TokenRevokeView
from apps.api.views.usage import UsageListView, UsageSummaryView

app_name = "api"

org_patterns = [
    path("", OrganizationDetailView.as_view(), name="org"),
    path("keys/", KeyListView.as_view(), name="keys"),
    path("keys/<int:key_id>/", KeyDetailView.as_view(), name="key"),
    path("keys/<int:key_id>/revoke/", KeyRevokeView.as_view(), name="key-revoke"),
    path("members/", MemberListView.as_view(), name="members"),
    path("members/<int:membership_id>/", MemberDetailView.as_view(), name="member"),
    path("leave/", LeaveView.as_view(), name="leave"),
    path("invitations/", InvitationListView.as_view(), name="invitations"),
    path("invitations/<int:invitation_id>/", InvitationDetailView.as_view(), name="invitation"),
    path("usage/", UsageListView.as_view(), name="usage"),
    path("usage/summary/", UsageSummaryView.as_view(), name="usage-summary"),
    path("balance/", BalanceView.as_view(), name="balance"),
    path("ledger/", LedgerListView.as_view(), name="ledger"),
    path("tokens/", TokenListView.as_view(), name="tokens"),
    path("tokens/<int:token_id>/revoke/", TokenRevokeView.as_view(), name="token-revoke"),
]

v1_patterns = [
    path("orgs/", OrganizationListView.as_view(), name="orgs"),
    path("orgs/<int:org_id>/", include(org_patterns)),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path("billing/", include("apps.billing.api_urls")),
]

urlpatterns = [
    path("v1/", include(v1_patterns)),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", docs_page, name="docs"),
    re_path(r"^", UnknownPathView.as_view(), name="unknown"),
]
