"""Plans name the model tiers they unlock by slug (data) instead of a many-to-many to
assistant.ModelTier, so that billing depends on no other app. The data moves across:
every plan keeps exactly the tiers it had, in the tiers' display order."""

from django.db import migrations, models


def tiers_to_slugs(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in Plan.objects.all():
        plan.model_tier_slugs = list(plan.tiers.order_by("sort_order", "slug").values_list("slug", flat=True))
        plan.save(update_fields=["model_tier_slugs"])


def slugs_to_tiers(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    ModelTier = apps.get_model("assistant", "ModelTier")
    for plan in Plan.objects.all():
        plan.tiers.set(ModelTier.objects.filter(slug__in=plan.model_tier_slugs))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_ledger_running_balance"),
    ]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="model_tier_slugs",
            field=models.JSONField(blank=True, default=list, help_text="Slugs of the model tiers this plan unlocks."),
        ),
        migrations.RunPython(tiers_to_slugs, slugs_to_tiers),
        migrations.RemoveField(model_name="plan", name="tiers"),
    ]
