"""The entry points: `/` and the list of the user's organizations (create one there)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.dashboard.forms import CreateOrganizationForm
from apps.dashboard.selectors import memberships_of
from apps.tenants.services import create_organization


def home(request: HttpRequest) -> HttpResponse:
    """Logged in: the first organization's overview (or the list if there is none)."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    first = memberships_of(request.user).first()
    if first is None:
        return redirect("dashboard:organizations")
    return redirect("dashboard:overview", org_id=first.organization_id)


@login_required
def organizations(request: HttpRequest) -> HttpResponse:
    """The user's organizations, and a form to create another (they become its owner)."""
    form = CreateOrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = create_organization(
            form.cleaned_data["name"], owner_email=request.user.email
        )
        messages.success(request, f"Created {organization.name}.")
        return redirect("dashboard:overview", org_id=organization.pk)
    context = {"memberships": memberships_of(request.user), "form": form}
    return render(request, "dashboard/organizations.html", context)
