"""The ad decision: request gates, sensitive topics, retrieval and ranking against the
in-memory index, the auction, pacing and frequency caps, the engine's warm-up, and the
preview that explains a decision.

The decision (`ad_decide`) is sync and fast; the chat runs it in a thread beside
generation with a hard time budget. Ad text never enters the prompt: this module
returns a payload for its own WebSocket frame and nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from ads import embeddings, minors, sensitive, tracking
from ads import index as ad_index
from ads import language as ad_language
from ads import metrics as ad_metrics
from ads import selection as ad_selection
from ads.campaign_index import Entry
from ads.models import Impression
from ads.selectors import frequency_counts_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdRequest:
    conversation_id: str
    user_id: int | None
    session_key: str  # viewer identity for frequency caps (user id preferred when logged in)
    context_text: str  # the user's latest message + recent turns (never the answer being generated)
    is_adult: bool | None  # None = not said
    ads_enabled: bool  # from Entitlements
    ads_dismissed: bool  # conversation flag
    language: str = ""  # "" = detect it from the turns (ads/language.py)
    # What the sensitive gate reads, each text on its own and in full (before any cut to
    # MAX_CONTEXT_CHARS, which is for retrieval only): the latest ADS_GATE_WINDOW_TURNS
    # user turns, the latest assistant answer, and any attachment's text as one more
    # turn. Empty: only the older check on context_text (decision_compute).
    turns: tuple[str, ...] = ()


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
    selection: ad_selection.Selection | None = None
    timings_ms: dict = field(default_factory=dict)
    ad: dict | None = None

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason, self.reason)


def _gate(request: AdRequest) -> str:
    if not request.ads_enabled:
        return "plan_ad_free"
    if minors.minor_conversation_gate(
        conversation_id=request.conversation_id, is_adult=request.is_adult, turns=request.turns
    ):
        return "minor"
    if request.ads_dismissed:
        return "dismissed"
    if not tracking.viewer_key(user_id=request.user_id, session_key=request.session_key):
        return "no_viewer"
    if not (request.context_text or "").strip():
        return "empty"
    return ""


def _gate_sensitive(request: AdRequest) -> sensitive.SensitiveResult | None:
    """The first sensitive text of the request's turns (sensitive.turns_sensitive: each
    turn on its own, in full): any one of them blocks the ad for the conversation. A
    request without turns is left to the check on context_text in decision_compute."""
    turns = [t for t in request.turns if (t or "").strip()]
    return sensitive.turns_sensitive(turns) if turns else None


def decision_compute(
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
    frequency = frequency_counts_get(viewer=viewer, now=now) if viewer else {}
    t2 = time.perf_counter()
    latest_text, latest_vector, earlier_weight = _retrieval_query(text)
    selection = ad_selection.select(
        index,
        context_text=text,
        vector=vector,
        latest_text=latest_text,
        latest_vector=latest_vector,
        earlier_weight=earlier_weight,
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


# The latest turn follows the earlier ones up (so they still say what it is about)
# when its cosine to them is at least this; below it the conversation moved on and
# only the latest turn chooses the ad. Calibrated on tests/ads/data/matching_dev.json.
FOLLOW_UP_MIN_COSINE = 0.16


def _retrieval_query(text: str) -> tuple[str | None, object, float]:
    """The latest turn (the first line: the chat puts the latest message first), its
    embedding, and the weight of the earlier turns: ad_selection.EARLIER_WEIGHT when
    the latest turn follows them up, 0 when the conversation moved on. (None, None, 0)
    for a one-turn context: `text` itself is the latest turn."""
    latest, _, earlier = text.strip().partition("\n")
    if not earlier.strip():
        return None, None, 0.0
    latest_vector, earlier_vector = embeddings.embed_many([latest, earlier])
    follows_up = float(latest_vector @ earlier_vector) >= FOLLOW_UP_MIN_COSINE
    return latest, latest_vector, ad_selection.EARLIER_WEIGHT if follows_up else 0.0


def _why(entry: Entry, matched: list[str]) -> dict:
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


def _impression_record(*, request: AdRequest, decision: Decision, now: datetime) -> dict:
    selection = decision.selection
    assert selection is not None and selection.winner is not None and selection.result is not None
    winner = selection.winner
    entry = winner.entry
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
        "library_url": reverse("ads:library_entry", args=[entry.creative_id]),
        "why": _why(entry, winner.matched),
    }


_warm_lock = threading.Lock()
_warming = False
_warm_finished = threading.Event()  # set when a warm-up thread ends (loaded or failed)


def ads_warm_up() -> None:
    """Load the embedding model, the topic centroids and the campaign index (about a
    second). The web process starts it in the background when it starts
    (assistant.warmup.web_process_started); a decision arriving before it finished
    waits for it within its budget."""
    embeddings.warm_up()
    sensitive.warm_up()
    ad_language.warm_up()
    ad_index.get_index()


def ads_warm_up_in_background() -> None:
    """Start loading the engine in a background thread if it is not loaded yet; returns
    at once."""
    _engine_ready()


def ads_engine_ready() -> bool:
    """Whether this process's ad engine (embedding model, gate, campaign index) is loaded;
    starts loading it in the background if it is not (and returns at once). /readyz asks,
    so a web process is called ready only once its first decision can be served."""
    return _engine_ready()


def _engine_loaded() -> bool:
    return embeddings.is_loaded() and sensitive.is_loaded() and ad_index.is_loaded()


def _engine_ready(*, wait_s: float = 0.0) -> bool:
    """True once the model and index are loaded, waiting up to `wait_s` for a warm-up
    under way. A decision that finds it still loading after that gets no ad (rather
    than a late one that would be served but never shown)."""
    global _warming
    if settings.ADS_INDEX_SYNC:
        return True
    if _engine_loaded():
        return True
    with _warm_lock:
        if not _warming:
            _warming = True
            _warm_finished.clear()

            def run() -> None:
                global _warming
                try:
                    ads_warm_up()
                except Exception:
                    logger.exception("ads: warming up the decision engine failed")
                finally:
                    _warming = False
                    _warm_finished.set()
                    connection.close()

            threading.Thread(target=run, name="ads-warm-up", daemon=True).start()
    if wait_s > 0:
        _warm_finished.wait(wait_s)
        return _engine_loaded()
    return False


def ad_decide(*, request: AdRequest, now: datetime | None = None) -> dict | None:
    """The `ad` payload for this conversation, or None. Records the served
    (unacknowledged, uncharged) impression. `now` is for simulations and tests."""
    if gate := _gate(request):
        ad_metrics.ad_decision_record(outcome="no_ad", reason=gate)
        return None
    # Half the decision's budget at most: the other half is the decision's own.
    if not _engine_ready(wait_s=settings.ADS_DECISION_BUDGET_S / 2):
        ad_metrics.ad_decision_record(outcome="no_ad", reason="engine_not_ready")
        return None
    now = now or timezone.now()
    viewer = tracking.viewer_key(user_id=request.user_id, session_key=request.session_key)
    try:
        if _gate_sensitive(request) is not None:
            ad_metrics.ad_decision_record(outcome="no_ad", reason="sensitive")
            return None
        if not request.language:
            request = dataclasses.replace(
                request, language=ad_language.conversation_language(request.turns or (request.context_text,))
            )
        decision = decision_compute(
            context_text=request.context_text, now=now, language=request.language, viewer=viewer
        )
        if decision.reason or decision.selection is None or decision.selection.winner is None:
            ad_metrics.ad_decision_record(outcome="no_ad", reason=decision.reason or "no_winner")
            return None
        if not ad_index.is_still_servable(creative_id=decision.selection.winner.entry.creative_id, now=now):
            # Changed since the index was built (paused, rejected, advertiser suspended):
            # no ad now, and this process rebuilds its index at its next decision.
            ad_index.invalidate()
            ad_metrics.ad_decision_record(outcome="no_ad", reason="stale_index")
            return None
        ad = _impression_record(request=request, decision=decision, now=now)
        ad_metrics.ad_decision_record(outcome="served")
        return ad
    except Exception:  # an ad is never worth a failed answer: log it, show none
        logger.exception("ads: the decision failed for conversation %s", request.conversation_id)
        ad_metrics.ad_decision_record(outcome="failed")
        return None


def ad_preview(*, text: str, advertiser_id: int | None = None, language: str = "en") -> dict:
    """What would be shown for `text`, with the score breakdown and the price, or why
    nothing would be. With advertiser_id, only that advertiser's campaigns are
    considered (other advertisers' campaigns are never revealed)."""
    decision = decision_compute(
        context_text=text, now=timezone.now(), language=language, advertiser_id=advertiser_id, explain=20
    )
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
        "why": _why(entry, selection.winner.matched),
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
