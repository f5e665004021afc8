from django.db import migrations, models


def backfill_running_balances(apps, schema_editor):
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    running: dict[int, int] = {}
    for entry in LedgerEntry.objects.order_by("account_id", "id").iterator():
        running[entry.account_id] = running.get(entry.account_id, 0) + entry.amount_micros
        LedgerEntry.objects.filter(pk=entry.pk).update(balance_after_micros=running[entry.account_id])


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_subscription_grace_bookkeeping")]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="balance_after_micros",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(backfill_running_balances, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ledgerentry",
            name="balance_after_micros",
            field=models.BigIntegerField(),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["account", "-id"], name="billing_ledger_account_latest"),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=models.Q(balance_after_micros__gte=0), name="billing_ledger_never_negative"
            ),
        ),
    ]
