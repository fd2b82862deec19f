"""Issued documents are immutable in the database itself (PostgreSQL triggers): invoice lines and
credit notes refuse every UPDATE and DELETE; an invoice refuses DELETE and any UPDATE that
touches what was issued (only its Stripe and payment status may move). SQLite (the demo) has no
triggers here; services never update these rows anyway."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION billing_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'issued % rows are immutable; issue a credit note instead', TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION billing_guard_invoice() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'issued invoices cannot be deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF (NEW.number, NEW.organization_id, NEW.kind, NEW.customer_name, NEW.period_start,
      NEW.period_end, NEW.issued_at, NEW.currency, NEW.total, NEW.total_cents,
      NEW.request_count, NEW.topups_total)
     IS DISTINCT FROM
     (OLD.number, OLD.organization_id, OLD.kind, OLD.customer_name, OLD.period_start,
      OLD.period_end, OLD.issued_at, OLD.currency, OLD.total, OLD.total_cents,
      OLD.request_count, OLD.topups_total) THEN
    RAISE EXCEPTION 'invoice % is issued and immutable; issue a credit note instead', OLD.number
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
  FOR EACH ROW EXECUTE FUNCTION billing_guard_invoice();
CREATE TRIGGER billing_invoiceline_immutable BEFORE UPDATE OR DELETE ON billing_invoiceline
  FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER billing_creditnote_immutable BEFORE UPDATE OR DELETE ON billing_creditnote
  FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_creditnote_immutable ON billing_creditnote;
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_guard_invoice();
DROP FUNCTION IF EXISTS billing_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
