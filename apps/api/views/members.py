"""Members and invitations: list, invite, change a role, remove, leave, accept."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.idempotency import idempotent
from apps.api.pagination import OldestFirstPagination
from apps.api.schema import IDEMPOTENCY_KEY, errors
from apps.api.selectors import members_of, open_invitations_of
from apps.api.serializers import (
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    OrganizationSerializer,
)
from apps.api.views.base import ApiView, OrgApiView
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.services import (
    accept_invitation,
    change_member_role,
    invite_member,
    leave_organization,
    remove_member,
    revoke_invitation,
)

MEMBERS = "members"
INVITATIONS = "invitations"


class MemberListView(OrgApiView):
    """Every member may see who else is a member."""

    serializer_class = MemberSerializer
    pagination_class = OldestFirstPagination

    @extend_schema(
        tags=[MEMBERS],
        operation_id="members_list",
        responses={200: MemberSerializer(many=True), **errors(404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        page = self.paginate_queryset(members_of(self.access.organization))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)


class MemberDetailView(OrgApiView):
    """Owners and admins change roles and remove members (only owners touch owners; the last
    owner stays)."""

    serializer_class = MemberSerializer

    @extend_schema(
        tags=[MEMBERS],
        operation_id="members_change_role",
        request=MemberRoleSerializer,
        responses={200: MemberSerializer, **errors(403, 404, 409, 422)},
    )
    def patch(self, request: Request, org_id: int, membership_id: int) -> Response:
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = change_member_role(
            self.access.organization,
            find_member(self.access.organization, membership_id),
            serializer.validated_data["role"],
            acting_user=self.access.user,
            acting_role=self.access.role,
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        tags=[MEMBERS],
        operation_id="members_remove",
        responses={204: None, **errors(403, 404, 409)},
    )
    def delete(self, request: Request, org_id: int, membership_id: int) -> Response:
        remove_member(
            self.access.organization,
            find_member(self.access.organization, membership_id),
            acting_user=self.access.user,
            acting_role=self.access.role,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaveView(OrgApiView):
    """A signed-in member leaves the organization (the last owner cannot)."""

    write_role = Role.MEMBER
    session_only = True

    @extend_schema(
        tags=[MEMBERS],
        operation_id="members_leave",
        request=None,
        responses={204: None, **errors(403, 404, 409)},
    )
    def post(self, request: Request, org_id: int) -> Response:
        leave_organization(self.access.organization, self.access.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(OrgApiView):
    """Owners and admins see open invitations and invite people by email."""

    serializer_class = InvitationSerializer
    read_role = Role.ADMIN

    @extend_schema(
        tags=[INVITATIONS],
        operation_id="invitations_list",
        responses={200: InvitationSerializer(many=True), **errors(403, 404, 422)},
    )
    def get(self, request: Request, org_id: int) -> Response:
        page = self.paginate_queryset(open_invitations_of(self.access.organization))
        return self.get_paginated_response(InvitationSerializer(page, many=True).data)

    @extend_schema(
        tags=[INVITATIONS],
        operation_id="invitations_create",
        parameters=[IDEMPOTENCY_KEY],
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer, **errors(403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request: Request, org_id: int) -> Response:
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, _ = invite_member(
            self.access.organization,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
            invited_by=self.access.user,
            acting_role=self.access.role,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(OrgApiView):
    """Owners and admins revoke an open invitation."""

    serializer_class = InvitationSerializer

    @extend_schema(
        tags=[INVITATIONS],
        operation_id="invitations_revoke",
        responses={204: None, **errors(403, 404)},
    )
    def delete(self, request: Request, org_id: int, invitation_id: int) -> Response:
        invitation = open_invitations_of(self.access.organization).filter(pk=invitation_id).first()
        if invitation is None:
            raise Http404("No such invitation.")
        revoke_invitation(invitation, acting_user=self.access.user, acting_role=self.access.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(ApiView):
    """The signed-in user accepts an invitation sent to their email address."""

    serializer_class = OrganizationSerializer
    session_only = True

    @extend_schema(
        tags=[INVITATIONS],
        operation_id="invitations_accept",
        request=InvitationAcceptSerializer,
        responses={200: OrganizationSerializer, **errors(403, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = accept_invitation(serializer.validated_data["token"], request.user)
        payload = OrganizationSerializer.payload(membership.organization, membership.role)
        return Response(OrganizationSerializer(payload).data)


def find_member(organization: Organization, membership_id: int) -> Membership:
    """The organization's membership `membership_id` (404 for any other)."""
    membership = members_of(organization).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member.")
    return membership
