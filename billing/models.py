"""Plans, the local snapshot of Stripe subscriptions, quotas and the advertiser ledger.

Stripe is the source of truth for subscriptions: these rows are a snapshot kept
current by webhooks (billing.webhooks) and a nightly re-sync. Money is integer
micros of USD (1 USD = 1_000_000 micros).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Plan(models.Model):
    """What a subscription (or a staff grant) entitles a person to. Data, editable in the admin."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=240, blank=True)
    stripe_monthly_lookup_key = models.CharField(
        max_length=100, blank=True, help_text="Lookup key of the monthly Stripe price (empty: not sold monthly)."
    )
    stripe_yearly_lookup_key = models.CharField(
        max_length=100, blank=True, help_text="Lookup key of the yearly Stripe price (empty: not sold yearly)."
    )
    monthly_price_micros = models.BigIntegerField(default=0, help_text="Shown on the pricing page; Stripe charges.")
    yearly_price_micros = models.BigIntegerField(default=0, help_text="Shown on the pricing page; Stripe charges.")
    # The model tiers this plan unlocks, by slug: data, not a foreign key, so that billing
    # depends on no other app (a tier's details belong to assistant; docs/billing.md).
    model_tier_slugs = models.JSONField(
        default=list, blank=True, help_text="Slugs of the model tiers this plan unlocks."
    )
    daily_tokens = models.PositiveIntegerField(help_text="Prompt + completion tokens per UTC day.")
    requests_per_minute = models.PositiveIntegerField()
    concurrent_runs = models.PositiveSmallIntegerField(default=1)
    max_context = models.PositiveIntegerField(help_text="Largest context (tokens) a conversation may use.")
    ads_enabled = models.BooleanField(default=True)
    # The API's limits (/api/v1/, per account, all its keys together); 0 refuses every
    # request of that kind. Enforced by billing.api_limits with the chat's quota machinery.
    api_requests_per_minute = models.PositiveIntegerField(default=0, help_text="API requests per UTC minute.")
    api_tokens_per_minute = models.PositiveIntegerField(
        default=0, help_text="API tokens (prompt + max output) per UTC minute."
    )
    api_tokens_per_day = models.PositiveIntegerField(default=0, help_text="API tokens (prompt + output) per UTC day.")
    api_concurrent_streams = models.PositiveSmallIntegerField(default=0, help_text="API requests in flight at once.")
    sort_order = models.PositiveSmallIntegerField(default=0, help_text="Cheapest first; higher also wins ties.")
    is_active = models.BooleanField(default=True, help_text="Shown on the pricing page.")

    class Meta:
        ordering = ["sort_order", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_monthly_lookup_key"],
                condition=~Q(stripe_monthly_lookup_key=""),
                name="billing_plan_unique_monthly_key",
            ),
            models.UniqueConstraint(
                fields=["stripe_yearly_lookup_key"],
                condition=~Q(stripe_yearly_lookup_key=""),
                name="billing_plan_unique_yearly_key",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paid(self) -> bool:
        return bool(self.stripe_monthly_lookup_key or self.stripe_yearly_lookup_key)


class Customer(models.Model):
    """A user's Stripe customer (created before their first Checkout, then reused)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stripe_customer")
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_customer_id


class Subscription(models.Model):
    """Local snapshot of one Stripe subscription."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        UNPAID = "unpaid"
        CANCELED = "canceled"
        PAUSED = "paused"

    stripe_subscription_id = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="subscriptions")
    stripe_price_lookup_key = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.INCOMPLETE)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    grace_period_end = models.DateTimeField(
        null=True, blank=True, help_text="While past due, the plan stays until this time; then back to Free."
    )
    checkout_session_id = models.CharField(max_length=255, blank=True)
    # Ordering of out-of-order webhooks (see billing.webhooks): the Stripe `created`
    # time of the newest event (or re-fetch) whose status was applied, and of the
    # newest subscription snapshot whose plan/period/cancel fields were applied,
    # with that snapshot's status rank to break same-second ties.
    state_as_of = models.DateTimeField(null=True, blank=True)
    snapshot_as_of = models.DateTimeField(null=True, blank=True)
    snapshot_rank = models.PositiveSmallIntegerField(default=0)
    # Grace period bookkeeping, order-independent: the newest time the subscription was
    # seen in good standing, and the Unix times it was seen overdue since then.
    last_good_at = models.DateTimeField(null=True, blank=True)
    overdue_times = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "grace_period_end"])]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.status})"


class StripeEvent(models.Model):
    """Every webhook event received; the unique id makes a replay a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="Stripe's `created` time of the event.")
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["processed_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class PlanGrant(models.Model):
    """A plan given by staff (works without Stripe). Active while not revoked and not ended."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plan_grants")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="grants")
    reason = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until revoked.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.plan} for {self.user}"


class QuotaUsage(models.Model):
    """Per subject per UTC day: tokens used (settled) and the current minute's request count.

    The row is the lock that serialises reservations of one subject in the database mode.
    """

    subject = models.CharField(max_length=120)
    day = models.DateField()
    tokens_used = models.BigIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    minute_start = models.DateTimeField(null=True, blank=True)
    minute_requests = models.PositiveIntegerField(default=0)
    # Tokens reserved this minute (worst cases; a settle gives back what went unused).
    minute_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "day"], name="billing_quota_usage_subject_day")]

    def __str__(self) -> str:
        return f"{self.subject} {self.day}"


class QuotaReservation(models.Model):
    """An outstanding worst-case reservation (database mode); counts as a running run until settled or expired."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    usage = models.ForeignKey(QuotaUsage, on_delete=models.CASCADE, related_name="reservations")
    tokens = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["usage", "settled_at", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.tokens} tokens until {self.expires_at:%H:%M:%S}"


class BalanceAccount(models.Model):
    """A prepaid balance (an advertiser's); the balance is the sum of its ledger entries."""

    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="usd")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LedgerEntry(models.Model):
    """One append-only movement on a balance account: positive credits, negative debits.

    Ad spend (debits) can never take a balance below zero. A reversal of a top-up that
    Stripe refunded or that the card holder disputed can: the money has left already,
    and the balance then says what the advertiser owes (see docs/billing.md)."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"  # a top-up (or a staff credit)
        DEBIT = "debit", "Ad spend"
        REFUND = "refund", "Refund"  # a top-up refunded in Stripe, reversed
        DISPUTE = "dispute", "Dispute"  # a top-up disputed by the card holder, reversed
        DISPUTE_WON = "dispute_won", "Dispute won"  # the disputed amount credited back

    POSITIVE_KINDS = (Kind.CREDIT, Kind.DISPUTE_WON)
    NEGATIVE_KINDS = (Kind.DEBIT, Kind.REFUND, Kind.DISPUTE)

    account = models.ForeignKey(BalanceAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_micros = models.BigIntegerField(help_text="Signed: credits positive, debits negative.")
    reference = models.CharField(max_length=200, unique=True, help_text="Idempotency key of the movement.")
    memo = models.CharField(max_length=200, blank=True)
    # The Stripe PaymentIntent a top-up was paid with; its refunds and disputes carry the
    # same id, which is how a charge event finds the top-up it reverses.
    stripe_payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    # The account's balance after this entry: the running sum of amount_micros, written
    # under the account's row lock, so the balance is one indexed read instead of a SUM
    # over every impression ever charged (still derived from the rows; a test checks it).
    balance_after_micros = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["account", "-id"], name="billing_ledger_account_latest")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["credit", "dispute_won"], amount_micros__gt=0)
                    | Q(kind__in=["debit", "refund", "dispute"], amount_micros__lt=0)
                ),
                name="billing_ledger_sign_matches_kind",
            ),
            # Ad spend never overspends: no debit leaves the balance below zero. Only a
            # reversal of a top-up (and a credit that follows one) may be below zero.
            models.CheckConstraint(
                condition=~Q(kind="debit") | Q(balance_after_micros__gte=0), name="billing_ledger_debit_never_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_micros} ({self.reference})"


class ApiTierPrice(models.Model):
    """The API's price of a model tier: a mirror of the Stripe price attached to the
    tier's Billing Meter (Stripe charges; this estimates costs on the usage page and
    names the meter the usage is reported to). Prompt and completion tokens cost alike."""

    tier_slug = models.SlugField(max_length=64, unique=True, help_text="The model tier's slug.")
    meter_event_name = models.CharField(
        max_length=100, help_text="The Stripe Billing Meter's event_name that this tier's tokens are reported to."
    )
    micros_per_million_tokens = models.BigIntegerField(
        help_text="Price per million tokens (prompt + completion), in micros of USD, as set on the Stripe price."
    )
    stripe_price_lookup_key = models.CharField(
        max_length=100, blank=True, help_text="Lookup key of the metered Stripe price (for reference)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier_slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(micros_per_million_tokens__gte=0), name="billing_api_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier_slug}: {self.micros_per_million_tokens} micros / 1M tokens"


class ApiUsageRecord(models.Model):
    """One API request's tokens (billing.metering). Written once per request id; a
    billable one is reported to Stripe as one Billing Meter event whose identifier is
    `identifier`, and marked reported only after Stripe accepted it."""

    identifier = models.CharField(
        max_length=100, unique=True, editable=False, help_text="The meter event's identifier (Stripe dedupes on it)."
    )
    request_id = models.CharField(max_length=100, unique=True, help_text="The API response's id.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="api_usage"
    )
    # API keys are the assistant app's: billing keeps their id and name as plain strings.
    key_id = models.CharField(max_length=64)
    key_name = models.CharField(max_length=100, blank=True)
    tier_slug = models.CharField(max_length=64)
    prompt_tokens = models.PositiveIntegerField()
    completion_tokens = models.PositiveIntegerField()
    # Snapshots taken when the request was recorded: the price (0: no price for the tier),
    # the meter and the Stripe customer ("" for either: not billed, never reported).
    micros_per_million_tokens = models.BigIntegerField(default=0)
    meter_event_name = models.CharField(max_length=100, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    billable = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    # The reporter's claim (a batch in flight) and its outcome.
    claimed_until = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    report_error = models.CharField(
        max_length=500, blank=True, help_text="Stripe refused the event (not retried until cleared)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="billing_apiusage_user_created"),
            models.Index(
                fields=["id"], condition=Q(billable=True, reported_at__isnull=True), name="billing_apiusage_unreported"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} ({self.tier_slug}, {self.total_tokens} tokens)"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
