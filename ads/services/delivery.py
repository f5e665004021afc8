"""Delivery: what happens to an ad after it is served. The ad frame going out, the
impression acknowledgement (the card was viewable), clicks through the signed redirect,
feedback and dismissal, and charging: spend goes into the ledger atomically, capped at
the budgets and the balance left.

Billable means real (docs/ads.md, "Counting and charging"): an impression once, when
its viewer's browser measured it viewable; a click once, the first by that viewer on
such an impression within the link's lifetime. Everything else is an InvalidEvent with
its reason, and free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from ads import auction, tracking
from ads import index as ad_index
from ads.models import AdFeedback, Advertiser, Campaign, Click, Creative, GuestViewer, Impression, InvalidEvent
from ads.services.review import landing_url_is_https
from ads.signals import impression_dismissed
from billing.public import InsufficientBalance, balance_micros, ledger_debit

Reason = InvalidEvent.Reason


class NotFound(Exception):
    """Unknown id, or not this viewer's (reported the same way)."""


def _impression_is_viewers(impression: Impression, viewer: tracking.Viewer) -> bool:
    """Served to this account, or to this guest session. (A guest who logs in keeps
    their impressions: the assistant app hands them to the account,
    impressions_claim_for_user, as the login rotates the session key.)"""
    if impression.user_id is not None:
        return viewer.user_id is not None and impression.user_id == viewer.user_id
    return bool(viewer.session_key) and impression.session_key == viewer.session_key


def impressions_claim_for_user(*, session_key: str, user_id: int) -> int:
    """A guest logged in or signed up: the impressions served to their session are the
    account's now (its acknowledgement and its one click still count, and the caps
    count them for the account). The assistant app calls it beside its own claim of
    the session's conversations."""
    if not session_key or not user_id:
        return 0
    return Impression.objects.filter(user__isnull=True, viewer_key=f"session:{session_key}").update(
        user_id=user_id, viewer_key=f"user:{user_id}"
    )


def _invalid_record(
    *, kind: str, reason: str, viewer: tracking.Viewer, now: datetime, impression: Impression | None = None,
    click: Click | None = None,
) -> InvalidEvent:
    return InvalidEvent.objects.create(
        kind=kind,
        reason=reason,
        impression=impression,
        click=click,
        campaign_id=impression.campaign_id if impression else None,
        advertiser_id=impression.advertiser_id if impression else None,
        viewer_key=viewer.key,
        client_hash=viewer.client_hash,
        user_agent=(viewer.user_agent or "")[:300],
        created_at=now,
    )


def _guest_unverified(impression: Impression, viewer: tracking.Viewer, now: datetime) -> bool:
    """A guest is a cheap identity: its impressions count only once its session has a
    complete answer, and only for the first ADS_GUEST_SESSIONS_PER_IP_HOUR new guest
    sessions seen from one network in an hour. An account is not a guest."""
    if impression.user_id is not None or viewer.user_id is not None:
        return False
    guest = GuestViewer.objects.filter(session_key=impression.session_key).first()
    if guest is None:
        recent = GuestViewer.objects.filter(
            client_hash=viewer.client_hash, first_seen_at__gt=now - timedelta(hours=1)
        ).count()
        guest, _ = GuestViewer.objects.get_or_create(
            session_key=impression.session_key,
            defaults={
                "client_hash": viewer.client_hash,
                "first_seen_at": now,
                "within_cap": recent < settings.ADS_GUEST_SESSIONS_PER_IP_HOUR,
            },
        )
    answered = import_string(settings.ADS_GUEST_ANSWERED)  # the assistant app's, named by the setting
    return not guest.within_cap or not answered(session_key=impression.session_key)


def campaign_charge(*, campaign_id: int, amount_micros: int, reference: str, now: datetime) -> int:
    """Deduct spend atomically: the advertiser's row, then the campaign's, are locked,
    the charge is capped at the budgets left (so a budget is never overspent) and debited from the advertiser's
    balance in the same transaction (which never goes below zero). Returns the micros
    charged (0 when nothing could be). Pauses the campaign when a budget or the
    balance runs out, and sends the low-balance notice once."""
    if amount_micros <= 0:
        return 0
    with transaction.atomic():
        # The advertiser's row first, then the campaign's: a charge that empties the balance
        # pauses all the advertiser's campaigns, so two charges of two campaigns that each
        # took their campaign row first would wait for each other (a deadlock on PostgreSQL).
        advertiser_id = Campaign.objects.values_list("advertiser_id", flat=True).get(pk=campaign_id)
        advertiser = Advertiser.objects.select_for_update().get(pk=advertiser_id)
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        campaign.advertiser = advertiser
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



def impression_mark_sent(*, impression_id: str, now: datetime | None = None) -> None:
    """The ad frame is going to the browser now (the first time counts): no
    acknowledgement may come sooner than ADS_VIEWABLE_MIN_MS after it."""
    Impression.objects.filter(pk=impression_id, sent_at__isnull=True).update(sent_at=now or timezone.now())


@dataclass(frozen=True)
class AckResult:
    counted: bool  # this call counted it (False: already acknowledged, or invalid)
    valid: bool | None
    reason: str = ""


def _ack_reason(impression: Impression, viewer: tracking.Viewer, visible_ms: int | None, now: datetime) -> str:
    if tracking.is_bot(viewer.user_agent):
        return Reason.BOT
    if (now - impression.served_at).total_seconds() > settings.ADS_IMPRESSION_ACK_WINDOW_S:
        return Reason.EXPIRED
    sent_at = impression.sent_at or impression.served_at
    minimum_s = settings.ADS_VIEWABLE_MIN_MS / 1000
    if (now - sent_at).total_seconds() < minimum_s or (visible_ms is not None and visible_ms < settings.ADS_VIEWABLE_MIN_MS):
        return Reason.NOT_VIEWABLE
    if _guest_unverified(impression, viewer, now):
        return Reason.GUEST_UNVERIFIED
    return ""


def impression_acknowledge(
    *, impression_id: str, viewer: tracking.Viewer, visible_ms: int | None = None, rate_limited: bool = False,
    now: datetime | None = None,
) -> AckResult:
    """The viewer's browser measured the card viewable. Counted once, for the viewer it
    was served to, within ADS_IMPRESSION_ACK_WINDOW_S of serving and no sooner than a
    second after the frame went out; CPM campaigns then pay a thousandth of the second
    price. Every refused acknowledgement is an InvalidEvent; another viewer's (or an
    unknown id) raises NotFound, as if it did not exist."""
    now = now or timezone.now()
    kind = InvalidEvent.Kind.IMPRESSION
    try:
        impression = Impression.objects.filter(pk=impression_id).first()
    except (ValueError, TypeError):
        impression = None
    if impression is None:
        _invalid_record(kind=kind, reason=Reason.UNKNOWN, viewer=viewer, now=now)
        raise NotFound(impression_id)
    if rate_limited:
        _invalid_record(kind=kind, reason=Reason.RATE_LIMITED, viewer=viewer, now=now, impression=impression)
        return AckResult(counted=False, valid=False, reason=Reason.RATE_LIMITED)
    if not _impression_is_viewers(impression, viewer):
        _invalid_record(kind=kind, reason=Reason.FOREIGN_VIEWER, viewer=viewer, now=now, impression=impression)
        raise NotFound(impression_id)
    with transaction.atomic():
        reason = Reason.DUPLICATE if impression.acknowledged_at else _ack_reason(impression, viewer, visible_ms, now)
        if reason != Reason.DUPLICATE:
            updated = Impression.objects.filter(pk=impression.pk, acknowledged_at__isnull=True).update(
                acknowledged_at=now, is_valid=not reason, invalid_reason=reason, visible_ms=visible_ms
            )
            reason = reason if updated else Reason.DUPLICATE  # another acknowledgement got there first
        if reason:
            _invalid_record(kind=kind, reason=reason, viewer=viewer, now=now, impression=impression)
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


def _click_reason(
    impression: Impression, viewer: tracking.Viewer, *, expired: bool, rate_limited: bool, now: datetime
) -> str:
    if rate_limited:
        return Reason.RATE_LIMITED
    if tracking.is_bot(viewer.user_agent):
        return Reason.BOT
    if expired:
        return Reason.EXPIRED
    if impression.acknowledged_at is None:
        return Reason.NEVER_SHOWN
    if not impression.is_valid:
        bad = impression.invalid_reason
        return bad if bad in (Reason.BOT, Reason.GUEST_UNVERIFIED) else Reason.NOT_VIEWABLE
    if not _impression_is_viewers(impression, viewer):
        return Reason.FOREIGN_VIEWER
    if impression.clicked_at is not None:
        return Reason.DUPLICATE
    window_start = now - timedelta(seconds=settings.ADS_DUPLICATE_CLICK_WINDOW_S)
    if Click.objects.filter(
        creative_id=impression.creative_id, viewer_key=viewer.key, is_valid=True, clicked_at__gte=window_start
    ).exists():
        return Reason.DUPLICATE  # the same ad, shown again to the same viewer, clicked again
    return ""


def click_record(
    *, token: str, viewer: tracking.Viewer, rate_limited: bool = False, now: datetime | None = None
) -> ClickResult:
    """A click through the signed redirect. A tampered link leads nowhere, and so does
    one whose impression or creative is gone or no longer approved; every other click
    is redirected to the approved landing page. Billable (a CPC campaign pays the second
    price) only once per impression: the first click, by its viewer, on an impression
    acknowledged viewable, within the link's lifetime; the rest are InvalidEvents."""
    now = now or timezone.now()
    ua = (viewer.user_agent or "")[:300]
    kind = InvalidEvent.Kind.CLICK
    parsed = tracking.click_token_read(token, now=now)
    if parsed.error == "tampered":
        click = Click.objects.create(clicked_at=now, invalid_reason=Reason.TAMPERED, user_agent=ua, viewer_key=viewer.key)
        _invalid_record(kind=kind, reason=Reason.TAMPERED, viewer=viewer, now=now, click=click)
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
            "viewer_key": viewer.key,
            "impression": impression,
            "creative_id": impression.creative_id if impression else None,
            "campaign_id": impression.campaign_id if impression else None,
        }
        landing: str | None = None
        if impression is None:
            reason = Reason.UNKNOWN
        elif impression.creative.review_status != Creative.ReviewStatus.APPROVED or not landing_url_is_https(
            impression.creative.landing_url
        ):
            reason = Reason.NOT_APPROVED
        else:
            landing = impression.creative.landing_url
            expired = parsed.error == "expired"
            reason = _click_reason(impression, viewer, expired=expired, rate_limited=rate_limited, now=now)
            # Exactly once, even for two first clicks at the same instant: only one UPDATE
            # finds clicked_at still empty.
            if not reason and not Impression.objects.filter(pk=impression.pk, clicked_at__isnull=True).update(
                clicked_at=now
            ):
                reason = Reason.DUPLICATE
        if reason:
            click = Click.objects.create(**base, invalid_reason=reason)
            _invalid_record(kind=kind, reason=reason, viewer=viewer, now=now, impression=impression, click=click)
            return ClickResult(click, landing)
        assert impression is not None and landing is not None
        click = Click.objects.create(**base, is_valid=True)
        Creative.objects.filter(pk=impression.creative_id).update(clicks_count=F("clicks_count") + 1)
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
    if not _impression_is_viewers(impression, tracking.Viewer(user_id=user_id, session_key=session_key)):
        raise NotFound(impression_id)
    feedback, _ = AdFeedback.objects.get_or_create(impression=impression, kind=kind)
    return feedback


def impression_dismiss(*, impression_id: str, user_id: int | None, session_key: str) -> None:
    """The viewer dismissed the card: recorded as feedback, and no more ads in the
    conversation it was shown in (the assistant app owns conversations: it receives the
    impression_dismissed signal and checks that the viewer owns this one)."""
    feedback = feedback_record(
        impression_id=impression_id, user_id=user_id, session_key=session_key, kind=AdFeedback.Kind.DISMISSED
    )
    conversation_id = feedback.impression.conversation_id
    if conversation_id is not None:
        impression_dismissed.send(
            sender=AdFeedback, conversation_id=conversation_id, user_id=user_id, session_key=session_key
        )


def ad_events_anonymise(*, user_id: int) -> int:
    """An account is being deleted: its impressions, clicks and invalid events keep counting
    in the advertisers' reports (campaign, creative, times, validity and cost stay) but lose
    every link to the person: the user, the session, the conversation, the user agent and
    the address's hash go, and the viewer key becomes one random key for all of them (so
    reach and frequency figures stay right). Returns how many impressions changed."""
    import uuid

    from django.db.models import Q

    viewer = tracking.viewer_key(user_id=user_id, session_key="")
    pseudonym = f"deleted:{uuid.uuid4().hex}"
    changed = Impression.objects.filter(Q(user_id=user_id) | Q(viewer_key=viewer)).update(
        user=None, session_key="", viewer_key=pseudonym, conversation_id=None
    )
    Click.objects.filter(viewer_key=viewer).update(viewer_key=pseudonym, user_agent="")
    InvalidEvent.objects.filter(viewer_key=viewer).update(viewer_key=pseudonym, user_agent="", client_hash="")
    return changed
