"""Delivery: what happens to an ad after it is served. The impression acknowledgement
(the browser showed the card), clicks through the signed redirect, feedback and
dismissal, and charging: spend goes into the ledger atomically, capped at the budgets
and the balance left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ads import auction, tracking
from ads import index as ad_index
from ads.models import AdFeedback, Advertiser, Campaign, Click, Creative, Impression
from ads.services.review import landing_url_is_https
from billing.public import InsufficientBalance, balance_micros, ledger_debit


class NotFound(Exception):
    """Unknown id, or not this viewer's (reported the same way)."""


def _impression_is_viewers(impression: Impression, *, user_id: int | None, session_key: str) -> bool:
    if impression.user_id is not None:
        return user_id is not None and impression.user_id == user_id
    return bool(session_key) and impression.session_key == session_key


def campaign_charge(*, campaign_id: int, amount_micros: int, reference: str, now: datetime) -> int:
    """Deduct spend atomically: the campaign row is locked, the charge is capped at the
    budgets left (so a budget is never overspent) and debited from the advertiser's
    balance in the same transaction (which never goes below zero). Returns the micros
    charged (0 when nothing could be). Pauses the campaign when a budget or the
    balance runs out, and sends the low-balance notice once."""
    if amount_micros <= 0:
        return 0
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("advertiser").get(pk=campaign_id)
        advertiser = campaign.advertiser
        today = now.date()
        spent_today = campaign.spent_today_micros if campaign.spend_day == today else 0
        left = min(campaign.lifetime_budget_micros - campaign.spent_micros, campaign.daily_budget_micros - spent_today)
        if left <= 0:
            _campaign_pause_if_spent(campaign)
            return 0
        amount = min(amount_micros, left)
        try:
            ledger_debit(
                account_id=advertiser.balance_account_id,
                amount_micros=amount,
                reference=reference,
                memo=f"Ads: {campaign.name}"[:200],
            )
        except InsufficientBalance as exc:
            if exc.balance_micros <= 0:
                _campaigns_pause_for_balance(advertiser_id=advertiser.id)
                return 0
            amount = exc.balance_micros  # the last of the balance
            try:
                ledger_debit(
                    account_id=advertiser.balance_account_id,
                    amount_micros=amount,
                    reference=reference,
                    memo=f"Ads: {campaign.name}"[:200],
                )
            except InsufficientBalance:
                _campaigns_pause_for_balance(advertiser_id=advertiser.id)
                return 0
        Campaign.objects.filter(pk=campaign.pk).update(
            spent_micros=F("spent_micros") + amount,
            spent_today_micros=(spent_today + amount),
            spend_day=today,
        )
        campaign.spent_micros += amount
        campaign.spent_today_micros = spent_today + amount
        _campaign_pause_if_spent(campaign)
        balance = balance_micros(account_id=advertiser.balance_account_id)
        if balance <= 0:
            _campaigns_pause_for_balance(advertiser_id=advertiser.id)
        if balance < advertiser.low_balance_threshold_micros and advertiser.low_balance_notified_at is None:
            updated = Advertiser.objects.filter(pk=advertiser.pk, low_balance_notified_at__isnull=True).update(
                low_balance_notified_at=now
            )
            if updated:
                from ads.tasks import send_low_balance_notice

                send_low_balance_notice.delay_on_commit(advertiser.pk)
        return amount


def _campaign_pause_if_spent(campaign: Campaign) -> None:
    if campaign.status == Campaign.Status.ACTIVE and campaign.spent_micros >= campaign.lifetime_budget_micros:
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.ACTIVE).update(
            status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BUDGET
        )
        transaction.on_commit(ad_index.invalidate)


def _campaigns_pause_for_balance(*, advertiser_id: int) -> None:
    updated = Campaign.objects.filter(advertiser_id=advertiser_id, status=Campaign.Status.ACTIVE).update(
        status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BALANCE
    )
    if updated:
        transaction.on_commit(ad_index.invalidate)


@dataclass(frozen=True)
class AckResult:
    counted: bool  # this call counted it (False: already acknowledged, or invalid)
    valid: bool | None
    reason: str = ""


def impression_acknowledge(*, impression_id: str, user_id: int | None, session_key: str, user_agent: str) -> AckResult:
    """The browser showed the card. Idempotent by impression id; only the viewer it
    was served to may acknowledge it. CPM campaigns pay a thousandth of the second
    price per valid impression."""
    now = timezone.now()
    try:
        impression = Impression.objects.get(pk=impression_id)
    except (Impression.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(impression_id) from exc
    if not _impression_is_viewers(impression, user_id=user_id, session_key=session_key):
        raise NotFound(impression_id)
    reason = ""
    if tracking.is_bot(user_agent):
        reason = "bot"
    elif (now - impression.served_at).total_seconds() > settings.ADS_IMPRESSION_ACK_WINDOW_S:
        reason = "late"
    with transaction.atomic():
        updated = Impression.objects.filter(pk=impression.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, is_valid=not reason, invalid_reason=reason
        )
        if not updated:
            impression.refresh_from_db(fields=["is_valid", "invalid_reason"])
            return AckResult(counted=False, valid=impression.is_valid, reason=impression.invalid_reason)
        if reason:
            return AckResult(counted=False, valid=False, reason=reason)
        Creative.objects.filter(pk=impression.creative_id).update(impressions_count=F("impressions_count") + 1)
        if impression.bid_type == Campaign.BidType.CPM:
            cost = campaign_charge(
                campaign_id=impression.campaign_id,
                amount_micros=auction.impression_cost_micros(impression.price_micros),
                reference=f"ads:imp:{impression.pk}",
                now=now,
            )
            Impression.objects.filter(pk=impression.pk).update(cost_micros=cost)
    return AckResult(counted=True, valid=True)


@dataclass(frozen=True)
class ClickResult:
    click: Click
    redirect_to: str | None  # the approved landing URL, or None: the link leads nowhere


def click_record(*, token: str, user_agent: str, viewer: str = "") -> ClickResult:
    """A click through the signed redirect. Tampered or expired links lead nowhere;
    bots and duplicates are redirected but recorded invalid and never charged; a
    valid click on a CPC campaign pays the second price."""
    now = timezone.now()
    ua = (user_agent or "")[:300]
    parsed = tracking.click_token_read(token)
    if parsed.error == "tampered":
        click = Click.objects.create(
            clicked_at=now, invalid_reason=Click.InvalidReason.TAMPERED, user_agent=ua, viewer_key=viewer
        )
        return ClickResult(click, None)
    with transaction.atomic():
        impression = (
            Impression.objects.select_for_update()
            .select_related("creative")
            .filter(pk=parsed.impression_id, creative_id=parsed.creative_id)
            .first()
        )
        base = {
            "clicked_at": now,
            "user_agent": ua,
            "viewer_key": viewer,
            "impression": impression,
            "creative_id": impression.creative_id if impression else None,
            "campaign_id": impression.campaign_id if impression else None,
        }
        if parsed.error == "expired":
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.EXPIRED), None)
        if impression is None:
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.UNKNOWN), None)
        creative = impression.creative
        if creative.review_status != Creative.ReviewStatus.APPROVED or not landing_url_is_https(creative.landing_url):
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.NOT_APPROVED), None)
        landing = creative.landing_url
        if tracking.is_bot(ua):
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.BOT), landing)
        window_start = now - timedelta(seconds=settings.ADS_DUPLICATE_CLICK_WINDOW_S)
        duplicate = Click.objects.filter(impression=impression, is_valid=True, clicked_at__gte=window_start).exists()
        if not duplicate and viewer:
            duplicate = Click.objects.filter(
                creative_id=creative.id, viewer_key=viewer, is_valid=True, clicked_at__gte=window_start
            ).exists()
        if duplicate:
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.DUPLICATE), landing)
        click = Click.objects.create(**base, is_valid=True)
        Creative.objects.filter(pk=creative.id).update(clicks_count=F("clicks_count") + 1)
        if impression.bid_type == Campaign.BidType.CPC:
            cost = campaign_charge(
                campaign_id=impression.campaign_id,
                amount_micros=impression.price_micros,
                reference=f"ads:click:{click.pk}",
                now=now,
            )
            if cost:
                Click.objects.filter(pk=click.pk).update(cost_micros=cost)
                click.cost_micros = cost
        return ClickResult(click, landing)


def feedback_record(*, impression_id: str, user_id: int | None, session_key: str, kind: str) -> AdFeedback:
    if kind not in AdFeedback.Kind.values:
        raise ValueError(f"Unknown feedback {kind!r}; one of {', '.join(AdFeedback.Kind.values)}.")
    try:
        impression = Impression.objects.get(pk=impression_id)
    except (Impression.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(impression_id) from exc
    if not _impression_is_viewers(impression, user_id=user_id, session_key=session_key):
        raise NotFound(impression_id)
    feedback, _ = AdFeedback.objects.get_or_create(impression=impression, kind=kind)
    return feedback


def impression_dismiss(*, impression_id: str, user_id: int | None, session_key: str) -> None:
    """The viewer dismissed the card: recorded as feedback, and no more ads in the
    conversation it was shown in (the assistant app owns conversations and checks that
    the viewer owns this one)."""
    from assistant.services import conversation_ads_dismissed_set

    feedback = feedback_record(
        impression_id=impression_id, user_id=user_id, session_key=session_key, kind=AdFeedback.Kind.DISMISSED
    )
    conversation_id = feedback.impression.conversation_id
    if conversation_id is not None:
        conversation_ads_dismissed_set(conversation_id=conversation_id, user_id=user_id, session_key=session_key)
