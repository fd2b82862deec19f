"""The page an invitation email links to: /invitations/<token>/accept.

GET shows what the invitation is for (anonymous visitors are asked to log in or sign up with
the invited address, and come back here); POST, by a logged-in user, accepts it. The token is
only ever compared by its HMAC; the response is not cached and sends no Referer elsewhere."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.dashboard.selectors import invitation_by_token
from apps.tenants.services import InvitationInvalidError, accept_invitation


@never_cache
@require_http_methods(["GET", "POST"])
def accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_by_token(token)
    if invitation is None or not invitation.is_acceptable():
        return render(request, "dashboard/invitation_invalid.html", status=404)
    here = request.path
    if not request.user.is_authenticated:
        signup_query = urlencode({"next": here, "email": invitation.email})
        context = {
            "invitation": invitation,
            "login_url": f"{reverse('accounts:login')}?{urlencode({'next': here})}",
            "signup_url": f"{reverse('accounts:signup')}?{signup_query}",
        }
        return render(request, "dashboard/invitation_accept.html", context)
    if request.method == "POST":
        try:
            membership = accept_invitation(token, request.user)
        except InvitationInvalidError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"You joined {invitation.organization.name}.")
            return redirect("dashboard:overview", org_id=membership.organization_id)
    context = {
        "invitation": invitation,
        "email_matches": invitation.email == request.user.email.lower(),
    }
    return render(request, "dashboard/invitation_accept.html", context)
