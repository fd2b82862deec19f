"""Dashboard pages of billing, under /billing/<org id>/ (apps/billing/dashboard_urls.py): balance,
buying credits, auto-recharge and low-balance settings, ledger history and invoices. Only owners
and admins of the organization get in (apps/billing/access.py)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.billing import auto_recharge, documents, selectors, topups
from apps.billing.access import billing_page
from apps.billing.errors import BillingNotConfigured, BillingRefused
from apps.billing.forms import AutoRechargeForm, BuyCreditsForm, LowBalanceForm
from apps.billing.models import Invoice
from apps.billing.stripe_gateway import StripeRefused, StripeUnavailable
from apps.tenants.models import Organization

HISTORY_PAGE_SIZE = 50


@require_GET
@billing_page
def overview(request: HttpRequest, organization: Organization) -> HttpResponse:
    summary = selectors.billing_summary(organization)
    profile = summary.profile
    return render(
        request,
        "billing/overview.html",
        {
            "organization": organization,
            "summary": summary,
            "buy_form": BuyCreditsForm(),
            "recharge_form": AutoRechargeForm(
                initial={
                    "enabled": profile.auto_recharge_enabled,
                    "threshold": profile.auto_recharge_threshold,
                    "amount": profile.auto_recharge_amount or summary.topup_min,
                }
            ),
            "low_balance_form": LowBalanceForm(
                initial={"threshold": profile.low_balance_threshold}
            ),
            "entries": selectors.ledger_history(organization)[:10],
            "invoices": selectors.invoices_of(organization)[:5],
            "topups": selectors.topups_of(organization)[:5],
        },
    )


@require_http_methods(["GET", "POST"])
@billing_page
def buy(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The buy form; a valid POST sends the buyer to Stripe Checkout (303)."""
    form = BuyCreditsForm(request.POST or None)
    summary = selectors.billing_summary(organization)
    if request.method == "POST" and summary.can_buy and form.is_valid():
        try:
            _, url = topups.start_checkout(
                organization,
                form.cleaned_data["amount"],
                requested_by=request.user,
                save_card=form.cleaned_data["save_card"],
                success_url=_absolute(request, "topup_done", organization)
                + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=_absolute(request, "buy", organization),
            )
        except (BillingRefused, BillingNotConfigured) as refused:
            form.add_error(None, str(refused))
        except (StripeUnavailable, StripeRefused):
            form.add_error(None, "Stripe could not be reached. Nothing was charged; try again.")
        else:
            response = HttpResponseRedirect(url)
            response.status_code = 303
            return response
    status = 200
    if request.method == "POST":
        status = 400 if summary.can_buy else 503  # 503: the operator has not set Stripe up
    context = {"organization": organization, "summary": summary, "form": form}
    return render(request, "billing/buy.html", context, status=status)


@require_GET
@billing_page
def topup_done(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Where Stripe Checkout returns the buyer: the credit lands when Stripe's event does."""
    session_id = request.GET.get("session_id", "")
    topups = selectors.topups_of(organization)
    topup = topups.filter(stripe_checkout_session_id=session_id).first() if session_id else None
    context = {"organization": organization, "topup": topup}
    return render(request, "billing/topup_done.html", context)


@require_POST
@billing_page
def recharge_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = AutoRechargeForm(request.POST)
    if form.is_valid():
        try:
            auto_recharge.configure_auto_recharge(
                organization,
                enabled=form.cleaned_data["enabled"],
                threshold=form.cleaned_data["threshold"],
                amount=form.cleaned_data["amount"],
                actor=request.user,
            )
        except BillingRefused as refused:
            messages.error(request, str(refused))
        else:
            messages.success(request, "Auto-recharge settings saved.")
    else:
        messages.error(request, _form_errors(form))
    return redirect("billing_dashboard:overview", organization.pk)


@require_POST
@billing_page
def low_balance_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = LowBalanceForm(request.POST)
    if form.is_valid():
        auto_recharge.configure_low_balance(
            organization, threshold=form.cleaned_data["threshold"], actor=request.user
        )
        messages.success(request, "Low-balance alert saved.")
    else:
        messages.error(request, _form_errors(form))
    return redirect("billing_dashboard:overview", organization.pk)


@require_GET
@billing_page
def ledger(request: HttpRequest, organization: Organization) -> HttpResponse:
    page = Paginator(selectors.ledger_history(organization), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "billing/ledger.html", {"organization": organization, "page": page})


@require_GET
@billing_page
def invoices(request: HttpRequest, organization: Organization) -> HttpResponse:
    context = {"organization": organization, "invoices": selectors.invoices_of(organization)}
    return render(request, "billing/invoices.html", context)


@require_GET
@billing_page
def invoice_detail(
    request: HttpRequest, organization: Organization, invoice_id: int
) -> HttpResponse:
    invoice = _invoice_or_404(organization, invoice_id)
    context = {"organization": organization, **documents.invoice_context(invoice)}
    return render(request, "billing/invoice_detail.html", context)


@require_GET
@billing_page
def invoice_html(request: HttpRequest, organization: Organization, invoice_id: int) -> HttpResponse:
    """The standalone, printable document."""
    invoice = _invoice_or_404(organization, invoice_id)
    return HttpResponse(documents.render_invoice_html(invoice))


@require_GET
@billing_page
def invoice_pdf(request: HttpRequest, organization: Organization, invoice_id: int) -> HttpResponse:
    invoice = _invoice_or_404(organization, invoice_id)
    response = HttpResponse(documents.render_invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{documents.pdf_filename(invoice)}"'
    return response


def _invoice_or_404(organization: Organization, invoice_id: int) -> Invoice:
    invoice = selectors.invoice_of(organization, invoice_id)
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _absolute(request: HttpRequest, name: str, organization: Organization) -> str:
    return request.build_absolute_uri(reverse(f"billing_dashboard:{name}", args=[organization.pk]))


def _form_errors(form: AutoRechargeForm | LowBalanceForm) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)
