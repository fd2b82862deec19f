"""Management API of billing (/api/v1/billing/<org id>/…): top-ups (list, start a Checkout) and
invoices (list, one with its lines, PDF). Authentication is the API's default; access is the
dashboard's rule: owners and admins of the organization in the URL (404 for others' orgs, 403
for members)."""

from django.http import Http404, HttpResponse
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.billing import documents, selectors, topups
from apps.billing.access import billing_organization
from apps.billing.errors import BillingNotConfigured, BillingRefused
from apps.billing.links import billing_link
from apps.billing.models import Invoice
from apps.billing.serializers import (
    CreateTopUpSerializer,
    InvoiceDetailSerializer,
    InvoiceSerializer,
    TopUpSerializer,
)
from apps.billing.stripe_gateway import StripeRefused, StripeUnavailable
from apps.tenants.models import Organization

LIST_LIMIT = 100


class BillingAPIView(APIView):
    permission_classes = [IsAuthenticated]

    def organization(self, request: Request, org_id: int) -> Organization:
        return billing_organization(request.user, org_id)

    def invoice(self, request: Request, org_id: int, invoice_id: int) -> Invoice:
        invoice = selectors.invoice_of(self.organization(request, org_id), invoice_id)
        if invoice is None:
            raise Http404("No such invoice.")
        return invoice


class TopUpsView(BillingAPIView):
    """GET: the latest top-ups. POST {amount, save_card}: a Checkout URL to pay at (201)."""

    def get(self, request: Request, org_id: int) -> Response:
        organization = self.organization(request, org_id)
        items = selectors.topups_of(organization)[:LIST_LIMIT]
        return Response({"data": TopUpSerializer(items, many=True).data})

    def post(self, request: Request, org_id: int) -> Response:
        organization = self.organization(request, org_id)
        payload = CreateTopUpSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            topup, url = topups.start_checkout(
                organization,
                payload.validated_data["amount"],
                requested_by=request.user,
                save_card=payload.validated_data["save_card"],
                success_url=billing_link("topup_done", organization.pk)
                + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=billing_link("buy", organization.pk),
            )
        except BillingNotConfigured as error:
            body = {"detail": str(error), "missing_settings": error.missing}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except BillingRefused as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        except (StripeUnavailable, StripeRefused):
            body = {"detail": "Stripe could not be reached; nothing was charged."}
            return Response(body, status=status.HTTP_502_BAD_GATEWAY)
        body = {**TopUpSerializer(topup).data, "checkout_url": url}
        return Response(body, status=status.HTTP_201_CREATED)


class InvoicesView(BillingAPIView):
    def get(self, request: Request, org_id: int) -> Response:
        organization = self.organization(request, org_id)
        items = selectors.invoices_of(organization)[:LIST_LIMIT]
        return Response({"data": InvoiceSerializer(items, many=True).data})


class InvoiceView(BillingAPIView):
    def get(self, request: Request, org_id: int, invoice_id: int) -> Response:
        return Response(InvoiceDetailSerializer(self.invoice(request, org_id, invoice_id)).data)


class InvoicePdfView(BillingAPIView):
    def get(self, request: Request, org_id: int, invoice_id: int) -> HttpResponse:
        invoice = self.invoice(request, org_id, invoice_id)
        response = HttpResponse(
            documents.render_invoice_pdf(invoice), content_type="application/pdf"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{documents.pdf_filename(invoice)}"'
        )
        return response
