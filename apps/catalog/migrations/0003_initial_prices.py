"""Seed the price history: every existing model gets one row with its current prices."""

from django.db import migrations


def seed_prices(apps, schema_editor):
    Model = apps.get_model("catalog", "Model")
    ModelPrice = apps.get_model("catalog", "ModelPrice")
    ModelPrice.objects.bulk_create(
        ModelPrice(
            model_id=model.pk,
            input_price_per_mtok=model.input_price_per_mtok,
            output_price_per_mtok=model.output_price_per_mtok,
            effective_from=model.updated_at,
            changed_label="initial",
        )
        for model in Model.objects.order_by("pk")
    )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_modelprice")]

    operations = [migrations.RunPython(seed_prices, migrations.RunPython.noop)]
