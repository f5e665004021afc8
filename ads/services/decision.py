"""Ads services: the ad decision, counting and charging, review, and the writes
behind advertisers, campaigns and creatives.

The decision (`ad_decide`) is sync and fast; the chat runs it in a thread beside
generation with a hard time budget. Ad text never enters the prompt: this module
returns a payload for its own WebSocket frame and nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ads import auction, embeddings, sensitive, tracking
from ads import index as ad_index
from ads.matching import Keyword, parse_keywords
from ads.models import (
    AdFeedback,
    Advertiser,
    AdvertiserMembership,
    Campaign,
    CampaignKeyword,
    Click,
    Creative,
    Impression,
)
from billing.ledger import InsufficientBalance, balance_account_create, balance_micros, ledger_debit

logger = logging.getLogger(__name__)

__all__ = ["AdRequest", "ad_decide", "ads_preview"]


# --- the decision -------------------------------------------------------------------


@dataclass(frozen=True)
class AdRequest:
    conversation_id: str
    user_id: int | None
    session_key: str  # viewer identity for frequency caps (user id preferred when logged in)
    context_text: str  # the user's latest message + recent turns (never the answer being generated)
    is_adult: bool | None  # None = not said
    ads_enabled: bool  # from Entitlements
    ads_dismissed: bool  # conversation flag
    language: str = "en"


REASONS = {
    "plan_ad_free": "The plan is ad-free.",
    "minor": "The user said they are under 18.",
    "dismissed": "Ads were dismissed in this conversation.",
    "no_viewer": "No viewer identity (neither a user nor a session).",
    "empty": "The conversation has no text to match.",
    "sensitive": "The conversation touches a sensitive topic.",
    "no_active_campaigns": "No campaign is active.",
    "no_relevant_campaigns": "No campaign is relevant enough (keywords or meaning) to this conversation.",
    "no_eligible_candidates": "Relevant campaigns exist but none may serve now (floor, pacing, caps, schedule).",
}
MAX_CONTEXT_CHARS = 2000


@dataclass
class Decision:
    reason: str = ""  # "" when an ad was chosen
    sensitive: dict | None = None
    selection: ad_index.Selection | None = None
    timings_ms: dict = field(default_factory=dict)
    ad: dict | None = None

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason, self.reason)


def _gate(request: AdRequest) -> str:
    if not request.ads_enabled:
        return "plan_ad_free"
    if request.is_adult is False:
        return "minor"
    if request.ads_dismissed:
        return "dismissed"
    if not tracking.viewer_key(user_id=request.user_id, session_key=request.session_key):
        return "no_viewer"
    if not (request.context_text or "").strip():
        return "empty"
    return ""


# A card served but not acknowledged yet may still be on its way to the screen, so it
# counts against the caps for this long; after that only cards actually shown count
# (a follow-up answer whose card the reader never scrolled to does not use up the cap).
FREQUENCY_PENDING_S = 120


def frequency_counts(*, viewer: str, now: datetime) -> dict[int, tuple[int, int]]:
    """Impressions shown (or just served) to this viewer per campaign: (last hour, last day)."""
    counts: dict[int, tuple[int, int]] = {}
    hour_ago = now - timedelta(hours=1)
    rows = (
        Impression.objects.filter(viewer_key=viewer, served_at__gte=now - timedelta(days=1))
        .filter(Q(acknowledged_at__isnull=False) | Q(served_at__gte=now - timedelta(seconds=FREQUENCY_PENDING_S)))
        .values_list("campaign_id", "served_at")
    )
    for campaign_id, served_at in rows:
        hour, day = counts.get(campaign_id, (0, 0))
        counts[campaign_id] = (hour + (served_at >= hour_ago), day + 1)
    return counts


def decide(
    *,
    context_text: str,
    now: datetime,
    language: str = "en",
    viewer: str = "",
    advertiser_id: int | None = None,
    explain: int = 2,
) -> Decision:
    """Everything after the request gates: sensitive topics, retrieval, eligibility
    and the auction. Records nothing."""
    decision = Decision()
    # The chat puts the latest message first, then earlier turns: keep the beginning
    # (the embedding model also reads only its first 256 tokens).
    text = (context_text or "")[:MAX_CONTEXT_CHARS]
    t0 = time.perf_counter()
    hit = sensitive.match_terms(text)
    if hit:
        decision.reason, decision.sensitive = "sensitive", hit.as_dict()
        return decision
    vector = embeddings.embed(text)
    t1 = time.perf_counter()
    hit = sensitive.match_classifier(vector)
    if hit:
        decision.reason, decision.sensitive = "sensitive", hit.as_dict()
        return decision
    index = ad_index.get_index()
    frequency = frequency_counts(viewer=viewer, now=now) if viewer else {}
    t2 = time.perf_counter()
    selection = ad_index.select(
        index,
        context_text=text,
        vector=vector,
        now=now,
        language=language,
        frequency=frequency,
        advertiser_id=advertiser_id,
        explain=explain,
    )
    t3 = time.perf_counter()
    decision.selection = selection
    decision.reason = selection.reason
    decision.timings_ms = {
        "embedding": round((t1 - t0) * 1000, 3),
        "index_and_frequency": round((t2 - t1) * 1000, 3),
        "selection": round((t3 - t2) * 1000, 3),
    }
    return decision


def _why(entry: ad_index.Entry, matched: list[str], similarity: float) -> dict:
    if matched:
        quoted = ", ".join(f"“{m}”" for m in matched[:3])
        explanation = (
            f"{entry.advertiser_name} paid for this suggestion. It was chosen because this conversation "
            f"mentioned {quoted}. Lhama picks ads from the words of this conversation only: no profile, "
            "no history, and the answer itself is never influenced by ads."
        )
    else:
        explanation = (
            f"{entry.advertiser_name} paid for this suggestion. It was chosen because its description is close "
            "in meaning to this conversation. Lhama picks ads from the words of this conversation only: no "
            "profile, no history, and the answer itself is never influenced by ads."
        )
    return {
        "advertiser": entry.advertiser_name,
        "paid_by": entry.paid_by,
        "matched": list(matched[:5]) or ["the topic of this conversation"],
        "explanation": explanation,
    }


def _record_impression(*, request: AdRequest, decision: Decision, now: datetime) -> dict:
    selection = decision.selection
    assert selection is not None and selection.winner is not None and selection.result is not None
    winner = selection.winner
    entry = winner.entry
    conversation_id = None
    try:
        conversation_id = uuid.UUID(str(request.conversation_id))
    except (TypeError, ValueError):
        conversation_id = None
    impression = Impression.objects.create(
        creative_id=entry.creative_id,
        campaign_id=entry.campaign_id,
        advertiser_id=entry.advertiser_id,
        conversation_id=conversation_id,
        user_id=request.user_id,
        session_key=request.session_key or "",
        viewer_key=tracking.viewer_key(user_id=request.user_id, session_key=request.session_key),
        served_at=now,
        bid_type=entry.bid_type,
        bid_micros=entry.bid_micros,
        price_micros=selection.result.price_micros,
        relevance=winner.relevance,
        predicted_ctr=entry.pctr,
        score=winner.bid.score if winner.bid else 0.0,
        matched=winner.matched[:10],
        language=request.language or "",
    )
    return {
        "impression_id": str(impression.id),
        "advertiser": entry.advertiser_name,
        "headline": entry.headline,
        "text": entry.text,
        "question": entry.question,
        "display_domain": entry.display_domain,
        **tracking.ad_urls(impression_id=str(impression.id), creative_id=entry.creative_id),
        "why": _why(entry, winner.matched, winner.similarity),
    }


_warm_lock = threading.Lock()
_warming = False


def ads_warm_up() -> None:
    """Load the embedding model, the topic centroids and the campaign index (about a
    second). A web process may call it at start; otherwise the first decision starts
    it in the background."""
    embeddings.warm_up()
    sensitive.warm_up()
    ad_index.get_index()


def ads_warm_up_in_background() -> None:
    """Start loading the engine in a background thread if it is not loaded yet; returns
    at once. The chat socket calls it on connect, so the first answer's ad is not lost
    to the cold start."""
    _engine_ready()


def _engine_ready() -> bool:
    """True once the model and index are loaded. Until then a decision gets no ad
    (rather than a late one that would be served but never shown) while a background
    thread loads them."""
    global _warming
    if getattr(settings, "ADS_INDEX_SYNC", False):
        return True
    if embeddings.is_loaded() and sensitive.is_loaded() and ad_index.is_loaded():
        return True
    with _warm_lock:
        if not _warming:
            _warming = True

            def run() -> None:
                global _warming
                try:
                    ads_warm_up()
                except Exception:
                    logger.exception("ads: warming up the decision engine failed")
                finally:
                    _warming = False
                    connection.close()

            threading.Thread(target=run, name="ads-warm-up", daemon=True).start()
    return False


def ad_decide(*, request: AdRequest, now: datetime | None = None) -> dict | None:
    """The `ad` payload for this conversation, or None. Records the served
    (unacknowledged, uncharged) impression. `now` is for simulations and tests."""
    if _gate(request):
        return None
    if not _engine_ready():
        return None
    now = now or timezone.now()
    viewer = tracking.viewer_key(user_id=request.user_id, session_key=request.session_key)
    try:
        decision = decide(context_text=request.context_text, now=now, language=request.language, viewer=viewer)
        if decision.reason or decision.selection is None or decision.selection.winner is None:
            return None
        return _record_impression(request=request, decision=decision, now=now)
    except Exception:  # an ad is never worth a failed answer: log it, show none
        logger.exception("ads: the decision failed for conversation %s", request.conversation_id)
        return None


def ads_preview(*, text: str, advertiser_id: int | None = None, language: str = "en") -> dict:
    """What would be shown for `text`, with the score breakdown and the price, or why
    nothing would be. With advertiser_id, only that advertiser's campaigns are
    considered (other advertisers' campaigns are never revealed)."""
    decision = decide(context_text=text, now=timezone.now(), language=language, advertiser_id=advertiser_id, explain=20)
    out: dict = {
        "ad": None,
        "reason": decision.reason,
        "reason_text": decision.reason_text if decision.reason else "",
        "sensitive": decision.sensitive,
        "timings_ms": decision.timings_ms,
        "candidates": [],
    }
    selection = decision.selection
    if selection is None:
        return out
    out["candidates"] = [c.as_dict() for c in selection.candidates[:20]]
    if selection.winner is None or selection.result is None:
        return out
    entry = selection.winner.entry
    result = selection.result
    out["ad"] = {
        "advertiser": entry.advertiser_name,
        "campaign": entry.campaign_name,
        "campaign_id": entry.campaign_id,
        "creative_id": entry.creative_id,
        "headline": entry.headline,
        "text": entry.text,
        "question": entry.question,
        "display_domain": entry.display_domain,
        "why": _why(entry, selection.winner.matched, selection.winner.similarity),
    }
    out["auction"] = {
        "bid_type": entry.bid_type,
        "bid_micros": entry.bid_micros,
        "price_micros": result.price_micros,
        "reserve_micros": result.reserve_micros,
        "winner_score": round(result.winner.score, 4),
        "runner_up_score": round(result.runner_up.score, 4) if result.runner_up else None,
        "price_unit": "per click" if entry.bid_type == "cpc" else "per thousand impressions",
    }
    if advertiser_id is not None:
        out["auction"]["note"] = "Only your own campaigns were considered; other advertisers may raise the price."
    return out


# --- counting and charging ----------------------------------------------------------


class NotFound(Exception):
    """Unknown id, or not this viewer's (reported the same way)."""


def _owns_impression(impression: Impression, *, user_id: int | None, session_key: str) -> bool:
    if impression.user_id is not None:
        return user_id is not None and impression.user_id == user_id
    return bool(session_key) and impression.session_key == session_key


def charge_campaign(*, campaign_id: int, amount_micros: int, reference: str, now: datetime) -> int:
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
            _pause_if_spent(campaign)
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
                _pause_for_balance(advertiser_id=advertiser.id)
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
                _pause_for_balance(advertiser_id=advertiser.id)
                return 0
        Campaign.objects.filter(pk=campaign.pk).update(
            spent_micros=F("spent_micros") + amount,
            spent_today_micros=(spent_today + amount),
            spend_day=today,
        )
        campaign.spent_micros += amount
        campaign.spent_today_micros = spent_today + amount
        _pause_if_spent(campaign)
        balance = balance_micros(account_id=advertiser.balance_account_id)
        if balance <= 0:
            _pause_for_balance(advertiser_id=advertiser.id)
        if balance < advertiser.low_balance_threshold_micros and advertiser.low_balance_notified_at is None:
            updated = Advertiser.objects.filter(pk=advertiser.pk, low_balance_notified_at__isnull=True).update(
                low_balance_notified_at=now
            )
            if updated:
                from ads.tasks import send_low_balance_notice

                send_low_balance_notice.delay_on_commit(advertiser.pk)
        return amount


def _pause_if_spent(campaign: Campaign) -> None:
    if campaign.status == Campaign.Status.ACTIVE and campaign.spent_micros >= campaign.lifetime_budget_micros:
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.ACTIVE).update(
            status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BUDGET
        )
        transaction.on_commit(ad_index.invalidate)


def _pause_for_balance(*, advertiser_id: int) -> None:
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


def impression_acknowledge(
    *, impression_id: str, user_id: int | None, session_key: str, user_agent: str, now: datetime | None = None
) -> AckResult:
    """The browser showed the card. Idempotent by impression id; only the viewer it
    was served to may acknowledge it. CPM campaigns pay a thousandth of the second
    price per valid impression."""
    now = now or timezone.now()
    try:
        impression = Impression.objects.get(pk=impression_id)
    except (Impression.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(impression_id) from exc
    if not _owns_impression(impression, user_id=user_id, session_key=session_key):
        raise NotFound(impression_id)
    reason = ""
    if tracking.is_bot(user_agent):
        reason = "bot"
    elif (now - impression.served_at).total_seconds() > tracking.impression_ack_window_s():
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
            cost = charge_campaign(
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


def click_record(*, token: str, user_agent: str, viewer: str = "", now: datetime | None = None) -> ClickResult:
    """A click through the signed redirect. Tampered or expired links lead nowhere;
    bots and duplicates are redirected but recorded invalid and never charged; a
    valid click on a CPC campaign pays the second price."""
    now = now or timezone.now()
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
        if creative.review_status != Creative.ReviewStatus.APPROVED or not _is_https(creative.landing_url):
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.NOT_APPROVED), None)
        landing = creative.landing_url
        if tracking.is_bot(ua):
            return ClickResult(Click.objects.create(**base, invalid_reason=Click.InvalidReason.BOT), landing)
        window_start = now - timedelta(seconds=tracking.duplicate_click_window_s())
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
            cost = charge_campaign(
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
    if not _owns_impression(impression, user_id=user_id, session_key=session_key):
        raise NotFound(impression_id)
    feedback, _ = AdFeedback.objects.get_or_create(impression=impression, kind=kind)
    return feedback


def conversation_ads_dismiss(*, impression_id: str, user_id: int | None, session_key: str) -> None:
    """No more ads in the conversation this ad was shown in (its owner only)."""
    from assistant.models import Conversation

    feedback = feedback_record(
        impression_id=impression_id, user_id=user_id, session_key=session_key, kind=AdFeedback.Kind.DISMISSED
    )
    conversation_id = feedback.impression.conversation_id
    if conversation_id is None:
        return
    owned = Conversation.objects.filter(pk=conversation_id)
    owned = owned.filter(user_id=user_id) if user_id else owned.filter(user__isnull=True, session_key=session_key)
    owned.update(ads_dismissed=True)


# --- review ---------------------------------------------------------------------------

BANNED_WORDS = (
    "guaranteed cure",
    "miracle",
    "get rich quick",
    "risk-free",
    "100% free money",
    "casino",
    "gambling",
    "bet now",
    "payday loan",
    "crypto giveaway",
    "weight loss pill",
    "viagra",
    "xxx",
    "porn",
    "click here",
    "act now",
    "you have won",
)
LIMITS = {"question": 160, "headline": 60, "text": 180, "display_domain": 100, "landing_url": 500}


def _is_https(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "https" and bool(parts.hostname)


def creative_check(
    *, question: str, headline: str, text: str, landing_url: str, display_domain: str
) -> dict[str, list[str]]:
    """The automatic review: errors per field (empty when it passes)."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    values = {
        "question": question or "",
        "headline": headline or "",
        "text": text or "",
        "landing_url": landing_url or "",
        "display_domain": display_domain or "",
    }
    for name, value in values.items():
        if not value.strip():
            add(name, "This field is required.")
        elif len(value) > LIMITS[name]:
            add(name, f"At most {LIMITS[name]} characters (this has {len(value)}).")
    url = values["landing_url"].strip()
    parts = urlsplit(url)
    if url and parts.scheme.lower() != "https":
        add("landing_url", f"The landing URL must start with https:// ({parts.scheme or 'no'} scheme given).")
    elif url and not parts.hostname:
        add("landing_url", "The landing URL has no host name.")
    elif url and (parts.username or parts.password):
        add("landing_url", "The landing URL must not contain a user name or password.")
    domain = values["display_domain"].strip().lower().removeprefix("www.")
    host = (parts.hostname or "").lower().removeprefix("www.")
    if domain and host and not (host == domain or host.endswith("." + domain)):
        add("display_domain", f"The display domain must be the landing URL's host ({host}) or a parent of it.")
    if domain and ("/" in domain or " " in domain or "." not in domain):
        add("display_domain", "Give a bare domain such as example.com.")
    for name in ("question", "headline", "text"):
        lowered = values[name].lower()
        for word in BANNED_WORDS:
            if word in lowered:
                add(name, f"“{word}” is not allowed in ads.")
        if any(ch in lowered for ch in "<>") or "javascript:" in lowered:
            add(name, "Ads are plain text: no HTML or script.")
        if values[name] and sum(c.isupper() for c in values[name]) > 0.6 * sum(c.isalpha() for c in values[name]) > 8:
            add(name, "Too many capital letters.")
    return errors


class CreativeInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _creative_fields(creative: Creative) -> dict:
    return {
        "question": creative.question,
        "headline": creative.headline,
        "text": creative.text,
        "landing_url": creative.landing_url,
        "display_domain": creative.display_domain,
    }


def creative_create(
    *, campaign: Campaign, question: str, headline: str, text: str, landing_url: str, display_domain: str
) -> Creative:
    """A new creative: automatic checks first (raises CreativeInvalid), then it waits
    for staff review."""
    fields = {
        "question": question.strip(),
        "headline": headline.strip(),
        "text": text.strip(),
        "landing_url": landing_url.strip(),
        "display_domain": display_domain.strip().lower(),
    }
    errors = creative_check(**fields)
    if errors:
        raise CreativeInvalid(errors)
    creative = Creative.objects.create(campaign=campaign, **fields)
    _embed_later(creative_id=creative.id)
    return creative


def creative_update(*, creative: Creative, **changes: str) -> Creative:
    """Edit a creative; any change of what the user sees sends it back to review."""
    fields = _creative_fields(creative)
    for name, value in changes.items():
        if name not in fields:
            raise TypeError(f"creative_update() got an unexpected field {name!r}")
        fields[name] = value.strip().lower() if name == "display_domain" else value.strip()
    errors = creative_check(**fields)
    if errors:
        raise CreativeInvalid(errors)
    if fields != _creative_fields(creative):
        for name, value in fields.items():
            setattr(creative, name, value)
        creative.review_status = Creative.ReviewStatus.PENDING
        creative.review_reason = ""
        creative.reviewed_by = None
        creative.reviewed_at = None
        creative.save()
        _embed_later(creative_id=creative.id)
        transaction.on_commit(ad_index.invalidate)
    return creative


def creative_approve(*, creative: Creative, reviewer) -> Creative:
    """Staff approval; the automatic checks run again so nothing unsafe is approved."""
    errors = creative_check(**_creative_fields(creative))
    if errors:
        raise CreativeInvalid(errors)
    creative.review_status = Creative.ReviewStatus.APPROVED
    creative.review_reason = ""
    creative.reviewed_by = reviewer
    creative.reviewed_at = timezone.now()
    creative.save(update_fields=["review_status", "review_reason", "reviewed_by", "reviewed_at", "updated_at"])
    ad_index.invalidate()
    return creative


def creative_reject(*, creative: Creative, reviewer, reason: str) -> Creative:
    if not (reason or "").strip():
        raise ValueError("A rejection needs a reason the advertiser can act on.")
    creative.review_status = Creative.ReviewStatus.REJECTED
    creative.review_reason = reason.strip()
    creative.reviewed_by = reviewer
    creative.reviewed_at = timezone.now()
    creative.save(update_fields=["review_status", "review_reason", "reviewed_by", "reviewed_at", "updated_at"])
    ad_index.invalidate()
    return creative


def _embed_later(*, creative_id: int | None = None, campaign_id: int | None = None) -> None:
    from ads.tasks import embed_campaign, embed_creative

    if creative_id is not None:
        embed_creative.delay_on_commit(creative_id)
    if campaign_id is not None:
        embed_campaign.delay_on_commit(campaign_id)


def creative_embed(*, creative_id: int) -> bool:
    """Cache the creative's embedding if its text changed. Idempotent."""
    creative = Creative.objects.filter(pk=creative_id).first()
    if creative is None:
        return False
    digest = embeddings.text_hash(creative.embedding_text)
    if creative.embedding_hash == digest and creative.embedding:
        return False
    vector = embeddings.embed(creative.embedding_text)
    Creative.objects.filter(pk=creative_id).update(embedding=embeddings.to_bytes(vector), embedding_hash=digest)
    return True


def campaign_embed(*, campaign_id: int) -> bool:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    digest = embeddings.text_hash(campaign.context_hints)
    if campaign.hints_embedding_hash == digest and (campaign.hints_embedding or not campaign.context_hints.strip()):
        return False
    vector = embeddings.embed(campaign.context_hints) if campaign.context_hints.strip() else None
    Campaign.objects.filter(pk=campaign_id).update(
        hints_embedding=embeddings.to_bytes(vector) if vector is not None else None, hints_embedding_hash=digest
    )
    return True


# --- advertisers and campaigns --------------------------------------------------------


def advertiser_create(
    *, name: str, owner=None, paid_by: str = "", website: str = "", contact_email: str = ""
) -> Advertiser:
    """An organisation with its own balance account; `owner` becomes its first member."""
    name = (name or "").strip()
    if not name:
        raise ValueError("An advertiser needs a name.")
    with transaction.atomic():
        account = balance_account_create(name=f"Advertiser: {name}"[:200])
        advertiser = Advertiser.objects.create(
            name=name[:120],
            paid_by=paid_by.strip()[:160],
            website=website.strip(),
            contact_email=contact_email.strip() or (getattr(owner, "email", "") or ""),
            balance_account=account,
        )
        if owner is not None:
            AdvertiserMembership.objects.create(advertiser=advertiser, user=owner, role=AdvertiserMembership.Role.OWNER)
    return advertiser


def advertiser_member_add(
    *, advertiser: Advertiser, user, role: str = AdvertiserMembership.Role.MANAGER
) -> AdvertiserMembership:
    if role not in AdvertiserMembership.Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    try:
        membership, created = AdvertiserMembership.objects.get_or_create(
            advertiser=advertiser, user=user, defaults={"role": role}
        )
    except IntegrityError:  # a concurrent add of the same member
        membership, created = AdvertiserMembership.objects.get(advertiser=advertiser, user=user), False
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


CAMPAIGN_FIELDS = {
    "name",
    "status",
    "starts_at",
    "ends_at",
    "daily_budget_micros",
    "lifetime_budget_micros",
    "pacing",
    "bid_type",
    "max_bid_micros",
    "frequency_cap_hour",
    "frequency_cap_day",
    "language",
    "context_hints",
}


def _campaign_validate(values: dict) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not str(values.get("name", "")).strip():
        errors["name"] = "A campaign needs a name."
    if values.get("status") not in Campaign.Status.values:
        errors["status"] = f"One of {', '.join(Campaign.Status.values)}."
    if values.get("pacing") not in Campaign.Pacing.values:
        errors["pacing"] = f"One of {', '.join(Campaign.Pacing.values)}."
    if values.get("bid_type") not in Campaign.BidType.values:
        errors["bid_type"] = f"One of {', '.join(Campaign.BidType.values)}."
    bid = values.get("max_bid_micros")
    if not isinstance(bid, int) or bid <= 0:
        errors["max_bid_micros"] = "The bid must be a positive amount."
    elif bid < auction.reserve_micros(values.get("bid_type", "cpc")):
        reserve = auction.reserve_micros(values.get("bid_type", "cpc")) / 1_000_000
        errors["max_bid_micros"] = f"The bid is below the reserve price (${reserve:.2f})."
    for name in ("daily_budget_micros", "lifetime_budget_micros"):
        if not isinstance(values.get(name), int) or values[name] < 0:
            errors[name] = "Budgets are amounts of zero or more."
    if not errors and values["daily_budget_micros"] > values["lifetime_budget_micros"]:
        errors["daily_budget_micros"] = "The daily budget cannot exceed the lifetime budget."
    if values.get("starts_at") and values.get("ends_at") and values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "The end must be after the start."
    for name in ("frequency_cap_hour", "frequency_cap_day"):
        cap = values.get(name)
        if cap is not None and (not isinstance(cap, int) or cap < 1 or cap > 1000):
            errors[name] = "A cap is a whole number from 1 to 1000, or empty for none."
    if len(values.get("context_hints") or "") > 2000:
        errors["context_hints"] = "At most 2000 characters."
    return errors


class CampaignInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def campaign_create(*, advertiser: Advertiser, keywords: str | list[Keyword] = "", **values) -> Campaign:
    unknown = set(values) - CAMPAIGN_FIELDS
    if unknown:
        raise TypeError(f"campaign_create() got unexpected fields {sorted(unknown)}")
    defaults = {f.name: f.get_default() for f in Campaign._meta.concrete_fields if f.name in CAMPAIGN_FIELDS}
    merged = {**defaults, **values}
    errors = _campaign_validate(merged)
    parsed = _parse_keywords_or_error(keywords, errors)
    if errors:
        raise CampaignInvalid(errors)
    with transaction.atomic():
        campaign = Campaign.objects.create(advertiser=advertiser, **merged)
        _keywords_replace(campaign=campaign, keywords=parsed)
    _embed_later(campaign_id=campaign.id)
    transaction.on_commit(ad_index.invalidate)
    return campaign


def campaign_update(*, campaign: Campaign, keywords: str | list[Keyword] | None = None, **values) -> Campaign:
    unknown = set(values) - CAMPAIGN_FIELDS
    if unknown:
        raise TypeError(f"campaign_update() got unexpected fields {sorted(unknown)}")
    merged = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS} | values
    errors = _campaign_validate(merged)
    parsed = _parse_keywords_or_error(keywords, errors) if keywords is not None else None
    if errors:
        raise CampaignInvalid(errors)
    with transaction.atomic():
        for name, value in values.items():
            setattr(campaign, name, value)
        if values.get("status") == Campaign.Status.ACTIVE:
            campaign.pause_reason = ""
        elif values.get("status") == Campaign.Status.PAUSED and not campaign.pause_reason:
            campaign.pause_reason = Campaign.PauseReason.ADVERTISER
        campaign.save()
        if parsed is not None:
            _keywords_replace(campaign=campaign, keywords=parsed)
    if "context_hints" in values:
        _embed_later(campaign_id=campaign.id)
    transaction.on_commit(ad_index.invalidate)
    return campaign


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Pause, resume (activate) or end a campaign."""
    if status not in Campaign.Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    campaign.status = status
    campaign.pause_reason = Campaign.PauseReason.ADVERTISER if status == Campaign.Status.PAUSED else ""
    campaign.save(update_fields=["status", "pause_reason", "updated_at"])
    transaction.on_commit(ad_index.invalidate)
    return campaign


def campaign_duplicate(*, campaign: Campaign, name: str = "") -> Campaign:
    """A draft copy with the same settings, keywords and creatives (which go back to review)."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            advertiser=campaign.advertiser,
            **{n: getattr(campaign, n) for n in CAMPAIGN_FIELDS if n not in ("name", "status")},
            name=(name or f"{campaign.name} (copy)")[:120],
            status=Campaign.Status.DRAFT,
            hints_embedding=campaign.hints_embedding,
            hints_embedding_hash=campaign.hints_embedding_hash,
        )
        CampaignKeyword.objects.bulk_create(
            CampaignKeyword(campaign=copy, text=k.text, match_type=k.match_type, is_negative=k.is_negative)
            for k in campaign.keywords.all()
        )
        for creative in campaign.creatives.all():
            Creative.objects.create(
                campaign=copy,
                **_creative_fields(creative),
                embedding=creative.embedding,
                embedding_hash=creative.embedding_hash,
            )
    return copy


def keywords_as_text(*, campaign: Campaign) -> str:
    """The campaign's keywords in the one-per-line syntax parse_keywords reads."""
    return "\n".join(Keyword(k.text, k.match_type, k.is_negative).as_line() for k in campaign.keywords.all())


def _parse_keywords_or_error(keywords, errors: dict) -> list[Keyword]:
    if isinstance(keywords, list) and all(isinstance(k, Keyword) for k in keywords):
        return keywords
    text = "\n".join(keywords) if isinstance(keywords, list) else (keywords or "")
    try:
        parsed = parse_keywords(text)
    except ValueError as exc:
        errors["keywords"] = str(exc)
        return []
    if len(parsed) > 200:
        errors["keywords"] = "At most 200 keywords per campaign."
    return parsed


def _keywords_replace(*, campaign: Campaign, keywords: list[Keyword]) -> None:
    campaign.keywords.all().delete()
    CampaignKeyword.objects.bulk_create(
        CampaignKeyword(campaign=campaign, text=k.text, match_type=k.match_type, is_negative=k.is_negative)
        for k in keywords
    )


def campaigns_resume_funded() -> int:
    """Campaigns paused for an empty balance resume once it is topped up; the
    low-balance flag clears once the balance is back above the threshold."""
    resumed = 0
    for advertiser in Advertiser.objects.filter(campaigns__pause_reason=Campaign.PauseReason.BALANCE).distinct():
        if balance_micros(account_id=advertiser.balance_account_id) > 0:
            resumed += Campaign.objects.filter(
                advertiser=advertiser, status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BALANCE
            ).update(status=Campaign.Status.ACTIVE, pause_reason="")
    for advertiser in Advertiser.objects.filter(low_balance_notified_at__isnull=False):
        if balance_micros(account_id=advertiser.balance_account_id) >= advertiser.low_balance_threshold_micros:
            Advertiser.objects.filter(pk=advertiser.pk).update(low_balance_notified_at=None)
    if resumed:
        transaction.on_commit(ad_index.invalidate)
    return resumed
