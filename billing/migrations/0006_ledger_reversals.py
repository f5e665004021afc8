"""Top-up reversals in the one ledger: refund, dispute and dispute_won entries, the
PaymentIntent of each top-up, and a debit-only floor at zero (a reversal may take a
balance below zero; ad spend never does)."""

from django.db import migrations, models


def backfill_payment_intents(apps, schema_editor):
    """Top-ups credited before this migration learn their PaymentIntent from the
    Checkout Session event that credited them, so their refunds and disputes can find them."""
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    StripeEvent = apps.get_model("billing", "StripeEvent")
    sessions = StripeEvent.objects.filter(
        type__in=["checkout.session.completed", "checkout.session.async_payment_succeeded"]
    )
    for event in sessions.iterator():
        session = (event.payload.get("data") or {}).get("object") or {}
        payment_intent = session.get("payment_intent")
        if session.get("id") and isinstance(payment_intent, str) and payment_intent:
            LedgerEntry.objects.filter(reference=f"stripe:checkout:{session['id']}", stripe_payment_intent="").update(
                stripe_payment_intent=payment_intent
            )


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_plan_model_tier_slugs")]

    operations = [
        migrations.RemoveConstraint(model_name="ledgerentry", name="billing_ledger_sign_matches_kind"),
        migrations.RemoveConstraint(model_name="ledgerentry", name="billing_ledger_never_negative"),
        migrations.AddField(
            model_name="ledgerentry",
            name="stripe_payment_intent",
            field=models.CharField(blank=True, db_index=True, max_length=255),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("credit", "Credit"),
                    ("debit", "Ad spend"),
                    ("refund", "Refund"),
                    ("dispute", "Dispute"),
                    ("dispute_won", "Dispute won"),
                ],
                max_length=12,
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=models.Q(kind__in=["credit", "dispute_won"], amount_micros__gt=0)
                | models.Q(kind__in=["debit", "refund", "dispute"], amount_micros__lt=0),
                name="billing_ledger_sign_matches_kind",
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=~models.Q(kind="debit") | models.Q(balance_after_micros__gte=0),
                name="billing_ledger_debit_never_negative",
            ),
        ),
        migrations.RunPython(backfill_payment_intents, migrations.RunPython.noop),
    ]
