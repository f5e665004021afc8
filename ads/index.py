"""The in-memory index of servable ads, and selection against it.

A decision must not query the campaign tables (10k+ rows) each time, so every
process keeps the servable (campaign, creative) pairs in memory: their embeddings as
one float32 matrix, their keywords in an inverted index, bids and budgets in plain
fields. The index is rebuilt when a service changes a campaign or creative (a
version number in the cache, checked at most once a second), and spend counters are
refreshed every few seconds; both happen in a background thread while decisions use
the previous index. Selection itself is a matrix-vector product plus a handful of
Python operations on the few candidates above the floors.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from ads import auction, embeddings, pacing
from ads.matching import MATCH_SCORES, Context

logger = logging.getLogger(__name__)

# Relevance: keyword score and embedding score combined as 1 - (1 - kw)(1 - emb).
EMB_FLOOR = 0.40  # cosine below which an embedding alone never makes a candidate
EMB_LOW, EMB_HIGH = 0.25, 0.65  # cosine mapped linearly onto relevance 0..1
RELEVANCE_FLOOR = 0.35
VERSION_CACHE_KEY = "ads:index:version"
VERSION_CHECK_S = 1.0
SPEND_REFRESH_S = 10.0
FULL_REFRESH_S = 300.0
MAX_INLINE_EMBEDDINGS = 200


@dataclass
class Entry:
    campaign_id: int
    creative_id: int
    advertiser_id: int
    advertiser_name: str
    paid_by: str
    campaign_name: str
    headline: str
    text: str
    question: str
    display_domain: str
    bid_type: str
    bid_micros: int
    language: str
    starts_at: datetime | None
    ends_at: datetime | None
    pacing: str
    daily_budget_micros: int
    lifetime_budget_micros: int
    frequency_cap_hour: int | None
    frequency_cap_day: int | None
    pctr: float
    spent_micros: int = 0
    spent_today_micros: int = 0
    spend_day: object = None  # the date spent_today_micros belongs to


@dataclass
class CompiledKeyword:
    campaign_id: int
    text: str
    match_type: str
    words: tuple[str, ...]
    stems: tuple[str, ...]
    is_negative: bool


@dataclass
class CampaignIndex:
    entries: list[Entry]
    hints: np.ndarray  # (n, DIM) campaign context hints (the creative's own vector when no hints)
    creatives: np.ndarray  # (n, DIM)
    postings: dict[str, list[CompiledKeyword]]
    entries_by_campaign: dict[int, list[int]]
    built_at: float = field(default_factory=_time.monotonic)
    spend_refreshed_at: float = field(default_factory=_time.monotonic)
    version: object = None

    def __len__(self) -> int:
        return len(self.entries)

    def refresh_spend(self, rows: list[tuple[int, int, int, object]]) -> None:
        for campaign_id, spent, spent_today, spend_day in rows:
            for i in self.entries_by_campaign.get(campaign_id, ()):
                entry = self.entries[i]
                entry.spent_micros = spent
                entry.spent_today_micros = spent_today
                entry.spend_day = spend_day
        self.spend_refreshed_at = _time.monotonic()


def build_index(
    *,
    entries: list[Entry],
    hints: list[np.ndarray | None],
    creatives: list[np.ndarray],
    keywords: list[CompiledKeyword],
    version: object = None,
) -> CampaignIndex:
    n = len(entries)
    creative_matrix = np.zeros((n, embeddings.DIM), dtype=np.float32)
    hint_matrix = np.zeros((n, embeddings.DIM), dtype=np.float32)
    for i in range(n):
        creative_matrix[i] = creatives[i]
        hint_matrix[i] = hints[i] if hints[i] is not None else creatives[i]
    by_campaign: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        by_campaign.setdefault(entry.campaign_id, []).append(i)
    postings: dict[str, list[CompiledKeyword]] = {}
    for keyword in keywords:
        if keyword.campaign_id in by_campaign and keyword.stems:
            postings.setdefault(keyword.stems[0], []).append(keyword)
    return CampaignIndex(
        entries=entries,
        hints=hint_matrix,
        creatives=creative_matrix,
        postings=postings,
        entries_by_campaign=by_campaign,
        version=version,
    )


# --- selection --------------------------------------------------------------------


@dataclass
class Candidate:
    index: int
    entry: Entry
    similarity: float
    keyword_score: float
    matched: list[str]
    relevance: float
    bid: auction.Bid | None = None
    excluded: str = ""  # why it cannot take part ("" when it can)

    def as_dict(self) -> dict:
        return {
            "campaign_id": self.entry.campaign_id,
            "campaign": self.entry.campaign_name,
            "creative_id": self.entry.creative_id,
            "advertiser_id": self.entry.advertiser_id,
            "advertiser": self.entry.advertiser_name,
            "bid_type": self.entry.bid_type,
            "bid_micros": self.entry.bid_micros,
            "similarity": round(self.similarity, 4),
            "keyword_score": self.keyword_score,
            "matched_keywords": self.matched,
            "relevance": round(self.relevance, 4),
            "predicted_ctr": round(self.entry.pctr, 5),
            "score": round(self.bid.score, 4) if self.bid else 0.0,
            "excluded": self.excluded,
        }


@dataclass
class Selection:
    candidates: list[Candidate]  # every candidate above the floors, best first
    winner: Candidate | None
    runner_up: Candidate | None
    result: auction.AuctionResult | None
    reason: str  # "" when there is a winner


def _keyword_hits(index: CampaignIndex, context: Context) -> tuple[dict[int, tuple[float, list[str]]], set[int]]:
    hits: dict[int, tuple[float, list[str]]] = {}
    negatives: set[int] = set()
    for stem in context.stem_set:
        for kw in index.postings.get(stem, ()):
            if not context.matches(kw.match_type, kw.words, kw.stems):
                continue
            if kw.is_negative:
                negatives.add(kw.campaign_id)
                continue
            score, matched = hits.get(kw.campaign_id, (0.0, []))
            hits[kw.campaign_id] = (max(score, MATCH_SCORES[kw.match_type]), [*matched, kw.text])
    return hits, negatives


def select(
    index: CampaignIndex,
    *,
    context_text: str,
    vector: np.ndarray | None,
    now: datetime,
    language: str = "en",
    frequency: dict[int, tuple[int, int]] | None = None,
    advertiser_id: int | None = None,
) -> Selection:
    """Candidates (keywords + embedding, negatives, floors), eligibility (language,
    schedule, pacing, frequency caps), then the auction. `frequency` maps campaign id
    to (served to this viewer in the last hour, in the last day)."""
    frequency = frequency or {}
    n = len(index)
    if n == 0:
        return Selection([], None, None, None, "no_active_campaigns")
    context = Context(context_text)
    hits, negatives = _keyword_hits(index, context)
    if vector is not None:
        sims = np.maximum(index.hints @ vector, index.creatives @ vector)
        emb_idx = np.flatnonzero(sims >= EMB_FLOOR).tolist()
    else:
        sims = None
        emb_idx = []
    kw_idx = [i for cid in hits for i in index.entries_by_campaign.get(cid, ())]
    candidates: list[Candidate] = []
    for i in sorted(set(emb_idx).union(kw_idx)):
        entry = index.entries[i]
        if advertiser_id is not None and entry.advertiser_id != advertiser_id:
            continue
        similarity = float(sims[i]) if sims is not None else 0.0
        kw_score, matched = hits.get(entry.campaign_id, (0.0, []))
        emb_rel = min(1.0, max(0.0, (similarity - EMB_LOW) / (EMB_HIGH - EMB_LOW)))
        if similarity < EMB_FLOOR:
            emb_rel = 0.0 if kw_score == 0 else emb_rel
        relevance = 1.0 - (1.0 - kw_score) * (1.0 - emb_rel)
        cand = Candidate(i, entry, similarity, kw_score, list(matched), relevance)
        cand.excluded = _exclusion(entry, cand, negatives, now=now, language=language, frequency=frequency)
        if not cand.excluded:
            cand.bid = auction.Bid(
                key=i,
                advertiser_id=entry.advertiser_id,
                bid_type=entry.bid_type,
                bid_micros=entry.bid_micros,
                pctr=entry.pctr,
                relevance=relevance,
            )
        candidates.append(cand)
    candidates.sort(key=lambda c: (c.excluded != "", -(c.bid.score if c.bid else 0.0), -c.relevance))
    # One creative per campaign takes part: the best-scoring one.
    seen: set[int] = set()
    bids: list[auction.Bid] = []
    for cand in candidates:
        if cand.bid is None or cand.entry.campaign_id in seen:
            continue
        seen.add(cand.entry.campaign_id)
        bids.append(cand.bid)
    result = auction.run_auction(bids)
    if result is None:
        reason = "no_eligible_candidates" if candidates else "no_relevant_campaigns"
        return Selection(candidates, None, None, None, reason)
    by_index = {c.index: c for c in candidates}
    winner = by_index[result.winner.key]
    runner_up = by_index[result.runner_up.key] if result.runner_up else None
    return Selection(candidates, winner, runner_up, result, "")


def _exclusion(
    entry: Entry, cand: Candidate, negatives: set[int], *, now: datetime, language: str, frequency: dict
) -> str:
    if entry.campaign_id in negatives:
        return "negative_keyword"
    if cand.relevance < RELEVANCE_FLOOR:
        return "below_relevance_floor"
    if entry.language and language and entry.language != language:
        return "language"
    if entry.starts_at and now < entry.starts_at:
        return "not_started"
    if entry.ends_at and now >= entry.ends_at:
        return "ended"
    if entry.bid_micros < auction.reserve_micros(entry.bid_type):
        return "below_reserve"
    max_cost = entry.bid_micros if entry.bid_type == "cpc" else auction.impression_cost_micros(entry.bid_micros)
    state = pacing.SpendState(
        pacing=entry.pacing,
        daily_budget_micros=entry.daily_budget_micros,
        lifetime_budget_micros=entry.lifetime_budget_micros,
        spent_today_micros=entry.spent_today_micros if entry.spend_day == now.date() else 0,
        spent_micros=entry.spent_micros,
        max_cost_micros=max_cost,
    )
    if not pacing.pacing_allows(state, now):
        return "pacing"
    hour, day = frequency.get(entry.campaign_id, (0, 0))
    if not pacing.frequency_allows(
        served_last_hour=hour, served_last_day=day, cap_hour=entry.frequency_cap_hour, cap_day=entry.frequency_cap_day
    ):
        return "frequency_cap"
    return ""


# --- loading from the database ----------------------------------------------------


def load_index(*, version: object = None) -> CampaignIndex:
    """Every servable (campaign, creative): campaign active, creative approved and
    active, advertiser active; embeddings from the cached columns."""
    from ads.models import Campaign, CampaignKeyword, Creative

    now = timezone.now()
    rows = (
        Creative.objects.filter(
            review_status=Creative.ReviewStatus.APPROVED,
            is_active=True,
            campaign__status=Campaign.Status.ACTIVE,
            campaign__advertiser__is_active=True,
        )
        .filter(Q(campaign__ends_at__isnull=True) | Q(campaign__ends_at__gt=now))
        .select_related("campaign", "campaign__advertiser")
        .order_by("id")
    )
    entries: list[Entry] = []
    hints: list[np.ndarray | None] = []
    creatives: list[np.ndarray | None] = []
    hint_cache: dict[int, np.ndarray | None] = {}
    missing: list[tuple[str, int, str]] = []
    for creative in rows.iterator(chunk_size=2000):
        campaign = creative.campaign
        advertiser = campaign.advertiser
        entries.append(
            Entry(
                campaign_id=campaign.id,
                creative_id=creative.id,
                advertiser_id=advertiser.id,
                advertiser_name=advertiser.name,
                paid_by=advertiser.display_paid_by,
                campaign_name=campaign.name,
                headline=creative.headline,
                text=creative.text,
                question=creative.question,
                display_domain=creative.display_domain,
                bid_type=campaign.bid_type,
                bid_micros=campaign.max_bid_micros,
                language=campaign.language,
                starts_at=campaign.starts_at,
                ends_at=campaign.ends_at,
                pacing=campaign.pacing,
                daily_budget_micros=campaign.daily_budget_micros,
                lifetime_budget_micros=campaign.lifetime_budget_micros,
                frequency_cap_hour=campaign.frequency_cap_hour,
                frequency_cap_day=campaign.frequency_cap_day,
                pctr=auction.predicted_ctr(clicks=creative.clicks_count, impressions=creative.impressions_count),
                spent_micros=campaign.spent_micros,
                spent_today_micros=campaign.spent_today_micros,
                spend_day=campaign.spend_day,
            )
        )
        if campaign.id not in hint_cache:
            vector = None
            if campaign.context_hints.strip():
                if campaign.hints_embedding_hash == embeddings.text_hash(campaign.context_hints):
                    vector = embeddings.from_bytes(campaign.hints_embedding)
                if vector is None:
                    missing.append(("hints", campaign.id, campaign.context_hints))
            hint_cache[campaign.id] = vector
        hints.append(hint_cache[campaign.id])
        vector = None
        if creative.embedding_hash == embeddings.text_hash(creative.embedding_text):
            vector = embeddings.from_bytes(creative.embedding)
        if vector is None:
            missing.append(("creative", len(entries) - 1, creative.embedding_text))
        creatives.append(vector)
    if missing:
        # Normally a task has cached these; embed the first few inline so a fresh
        # campaign serves at once, and leave the rest to the task.
        todo = missing[:MAX_INLINE_EMBEDDINGS]
        vectors = embeddings.embed_many([text for _, _, text in todo])
        for (kind, key, _), vector in zip(todo, vectors, strict=True):
            if kind == "hints":
                hint_cache[key] = vector
            else:
                creatives[key] = vector
        hints = [hint_cache[e.campaign_id] for e in entries]
    zero = np.zeros(embeddings.DIM, dtype=np.float32)
    creatives_final = [v if v is not None else zero for v in creatives]
    campaign_ids = {e.campaign_id for e in entries}
    keywords = [
        CompiledKeyword(
            campaign_id=k.campaign_id,
            text=k.text,
            match_type=k.match_type,
            words=_words(k.text),
            stems=_stems(k.text),
            is_negative=k.is_negative,
        )
        for k in CampaignKeyword.objects.filter(
            campaign__status=Campaign.Status.ACTIVE, campaign__advertiser__is_active=True
        ).only("campaign_id", "text", "match_type", "is_negative")
        if k.campaign_id in campaign_ids
    ]
    return build_index(entries=entries, hints=hints, creatives=creatives_final, keywords=keywords, version=version)


def _words(text: str) -> tuple[str, ...]:
    from ads.matching import tokenize

    return tuple(tokenize(text))


def _stems(text: str) -> tuple[str, ...]:
    from ads.matching import stem, tokenize

    return tuple(stem(w) for w in tokenize(text))


def load_spend() -> list[tuple[int, int, int, object]]:
    from ads.models import Campaign

    return list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE).values_list(
            "id", "spent_micros", "spent_today_micros", "spend_day"
        )
    )


# --- the process-wide index -------------------------------------------------------

_lock = threading.Lock()
_index: CampaignIndex | None = None
_local_version = 0
_last_version_check = 0.0
_refreshing = False


def _shared_version() -> object:
    from django.core.cache import cache

    try:
        return cache.get(VERSION_CACHE_KEY, 0)
    except Exception:  # a missing cache table must never stop a decision
        return None


def invalidate() -> None:
    """Called by services after a change that affects serving (campaign, creative,
    advertiser). Bumps the shared version (every process) and the local one."""
    global _local_version
    from django.core.cache import cache

    _local_version += 1
    try:
        cache.set(VERSION_CACHE_KEY, _time.time_ns(), timeout=None)
    except Exception:
        logger.debug("ads: could not bump the index version in the cache", exc_info=True)


def _sync_mode() -> bool:
    return bool(getattr(settings, "ADS_INDEX_SYNC", False))


def _rebuild(full: bool) -> None:
    global _index, _refreshing
    try:
        version = (_local_version, _shared_version())
        if full or _index is None:
            new = load_index(version=version)
            _index = new
        else:
            _index.refresh_spend(load_spend())
    except Exception:
        logger.exception("ads: rebuilding the campaign index failed; keeping the previous one")
    finally:
        _refreshing = False


def _rebuild_in_thread(full: bool) -> None:
    def run() -> None:
        close_old_connections()
        try:
            _rebuild(full)
        finally:
            connection.close()

    threading.Thread(target=run, name="ads-index-refresh", daemon=True).start()


def get_index() -> CampaignIndex:
    """The current index; stale ones are refreshed in the background (synchronously
    in tests, with settings.ADS_INDEX_SYNC)."""
    global _last_version_check, _refreshing
    if _index is None:
        with _lock:
            if _index is None:
                _rebuild(full=True)
        return _index if _index is not None else build_index(entries=[], hints=[], creatives=[], keywords=[])
    index = _index
    now = _time.monotonic()
    if _sync_mode():
        if index.version is None or index.version[0] != _local_version:
            _rebuild(full=True)
        elif now - index.spend_refreshed_at > SPEND_REFRESH_S:
            _rebuild(full=False)
        return _index
    if now - _last_version_check < VERSION_CHECK_S:
        return index
    _last_version_check = now
    full = (
        index.version is None
        or index.version != (_local_version, _shared_version())
        or now - index.built_at > FULL_REFRESH_S
    )
    stale_spend = now - index.spend_refreshed_at > SPEND_REFRESH_S
    if (full or stale_spend) and not _refreshing:
        with _lock:
            if not _refreshing:
                _refreshing = True
                _rebuild_in_thread(full)
    return index


def reset() -> None:
    """Forget the index (tests, and after a data import)."""
    global _index
    with _lock:
        _index = None
