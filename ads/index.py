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
from ads.matching import BROAD, EXACT, MATCH_SCORES, Context

logger = logging.getLogger(__name__)

# Relevance: keyword score and embedding score combined as 1 - (1 - kw)(1 - emb).
EMB_FLOOR = 0.42  # cosine below which an embedding alone never makes a candidate
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
class Pattern:
    """One distinct keyword (match type + words), shared by every campaign using it."""

    text: str
    match_type: str
    words: tuple[str, ...]
    stems: tuple[str, ...]
    positive: np.ndarray  # entry indices of campaigns targeting it
    negative: np.ndarray  # entry indices of campaigns excluding it
    positive_set: frozenset


_NO_DAY = -1


@dataclass
class SingleGroup:
    patterns: list[Pattern]
    positive: dict[float, np.ndarray]  # score -> entry indices
    negative: np.ndarray


def _single_groups(groups: dict[str, list[Pattern]]) -> dict[str, SingleGroup]:
    out = {}
    for key, patterns in groups.items():
        by_score: dict[float, list[np.ndarray]] = {}
        for p in patterns:
            if p.positive.size:
                by_score.setdefault(MATCH_SCORES[p.match_type], []).append(p.positive)
        negatives = [p.negative for p in patterns if p.negative.size]
        out[key] = SingleGroup(
            patterns=patterns,
            positive={score: np.unique(np.concatenate(arrays)) for score, arrays in by_score.items()},
            negative=np.unique(np.concatenate(negatives)) if negatives else np.zeros(0, dtype=np.int64),
        )
    return out


@dataclass
class CampaignIndex:
    entries: list[Entry]
    # (n, DIM): per entry, the normalised sum of the campaign's context-hints vector and
    # the creative's vector (the creative's alone when there are no hints). One matrix,
    # not two: the similarity pass reads it once per decision and is memory-bound.
    vectors: np.ndarray
    # Multi-word patterns, keyed by their two alphabetically first distinct stems: a
    # conversation looks up only the pairs of stems it contains.
    postings: dict[tuple[str, str], list[Pattern]]
    # Single-word patterns need no verification: presence of the stem (phrase, broad)
    # or of the word (exact) decides. Their entries are concatenated per key.
    single_stem: dict[str, SingleGroup]
    single_exact: dict[str, SingleGroup]
    entries_by_campaign: dict[int, list[int]]
    # Per-entry columns for vectorised eligibility and scoring.
    campaign: np.ndarray
    advertiser: np.ndarray
    bid: np.ndarray
    value: np.ndarray  # expected micros per impression before relevance (auction.expected_value_micros)
    language: np.ndarray
    starts: np.ndarray  # epoch seconds, -inf when none
    ends: np.ndarray  # epoch seconds, +inf when none
    even: np.ndarray
    daily: np.ndarray
    lifetime: np.ndarray
    max_cost: np.ndarray  # the most one event can cost (auction.event_cost_max_micros)
    reserve_ok: np.ndarray  # auction.bid_meets_reserve
    spent: np.ndarray
    spent_today: np.ndarray
    spend_day: np.ndarray  # date ordinal, or -1
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
                self.spent[i] = spent
                self.spent_today[i] = spent_today
                self.spend_day[i] = spend_day.toordinal() if spend_day else _NO_DAY
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
    matrix = np.zeros((n, embeddings.DIM), dtype=np.float32)
    for i in range(n):
        combined = creatives[i] + hints[i] if hints[i] is not None else creatives[i]
        norm = float(np.linalg.norm(combined))
        matrix[i] = combined / norm if norm > 0 else combined
    by_campaign: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        by_campaign.setdefault(entry.campaign_id, []).append(i)
    grouped: dict[tuple[str, tuple[str, ...]], tuple[CompiledKeyword, list[int], list[int]]] = {}
    for kw in keywords:
        if kw.campaign_id not in by_campaign or not kw.stems:
            continue
        key = (kw.match_type, kw.words)
        if key not in grouped:
            grouped[key] = (kw, [], [])
        (grouped[key][2] if kw.is_negative else grouped[key][1]).extend(by_campaign[kw.campaign_id])
    postings: dict[tuple[str, str], list[Pattern]] = {}
    single_stem: dict[str, list[Pattern]] = {}
    single_exact: dict[str, list[Pattern]] = {}
    for kw, positive, negative in grouped.values():
        pos = np.array(sorted(set(positive)), dtype=np.int64)
        pattern = Pattern(
            text=kw.text,
            match_type=kw.match_type,
            words=kw.words,
            stems=kw.stems,
            positive=pos,
            negative=np.array(sorted(set(negative)), dtype=np.int64),
            positive_set=frozenset(pos.tolist()),
        )
        distinct = sorted(set(kw.stems))
        if len(distinct) > 1:
            postings.setdefault((distinct[0], distinct[1]), []).append(pattern)
        elif len(kw.words) > 1:  # "run run": one distinct stem, still needs the phrase check
            postings.setdefault((distinct[0], distinct[0]), []).append(pattern)
        elif kw.match_type == EXACT:
            single_exact.setdefault(kw.words[0], []).append(pattern)
        else:
            single_stem.setdefault(kw.stems[0], []).append(pattern)
    # The auction's own rules, per entry: the vectorised selection reads these columns.
    value = [auction.expected_value_micros(bid_type=e.bid_type, bid_micros=e.bid_micros, pctr=e.pctr) for e in entries]
    max_cost = [auction.event_cost_max_micros(bid_type=e.bid_type, bid_micros=e.bid_micros) for e in entries]
    reserve_ok = [auction.bid_meets_reserve(bid_type=e.bid_type, bid_micros=e.bid_micros) for e in entries]
    return CampaignIndex(
        entries=entries,
        vectors=matrix,
        postings=postings,
        single_stem=_single_groups(single_stem),
        single_exact=_single_groups(single_exact),
        entries_by_campaign=by_campaign,
        campaign=np.array([e.campaign_id for e in entries], dtype=np.int64),
        advertiser=np.array([e.advertiser_id for e in entries], dtype=np.int64),
        bid=np.array([e.bid_micros for e in entries], dtype=np.int64),
        value=np.array(value, dtype=np.float64),
        language=np.array([e.language or "" for e in entries], dtype="<U8"),
        starts=np.array([e.starts_at.timestamp() if e.starts_at else -np.inf for e in entries], dtype=np.float64),
        ends=np.array([e.ends_at.timestamp() if e.ends_at else np.inf for e in entries], dtype=np.float64),
        even=np.array([e.pacing == "even" for e in entries], dtype=bool),
        daily=np.array([e.daily_budget_micros for e in entries], dtype=np.int64),
        lifetime=np.array([e.lifetime_budget_micros for e in entries], dtype=np.int64),
        max_cost=np.array(max_cost, dtype=np.int64),
        reserve_ok=np.array(reserve_ok, dtype=bool),
        spent=np.array([e.spent_micros for e in entries], dtype=np.int64),
        spent_today=np.array([e.spent_today_micros for e in entries], dtype=np.int64),
        spend_day=np.array([e.spend_day.toordinal() if e.spend_day else _NO_DAY for e in entries], dtype=np.int64),
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
    candidates: list[Candidate]  # the best candidates above the floors (eligible first), for explanations
    winner: Candidate | None
    runner_up: Candidate | None
    result: auction.AuctionResult | None
    reason: str  # "" when there is a winner


# Exclusion reasons, in the order they are reported.
_REASONS = [
    "",
    "negative_keyword",
    "below_relevance_floor",
    "language",
    "not_started",
    "ended",
    "below_reserve",
    "pacing",
    "frequency_cap",
]


def select(
    index: CampaignIndex,
    *,
    context_text: str,
    vector: np.ndarray | None,
    now: datetime,
    language: str = "en",
    frequency: dict[int, tuple[int, int]] | None = None,
    advertiser_id: int | None = None,
    explain: int = 2,
) -> Selection:
    """Candidates (keywords + embedding, negatives, floors), eligibility (language,
    schedule, reserve, pacing, frequency caps), then the auction. `explain`: how many
    candidates to describe in the result (a preview asks for more than a decision). `frequency` maps a
    campaign id to (served to this viewer in the last hour, in the last day).

    Vectorised over the whole index; Python loops only over matched keywords and
    the few best-scoring candidates."""
    frequency = frequency or {}
    n = len(index)
    if n == 0:
        return Selection([], None, None, None, "no_active_campaigns")
    context = Context(context_text)
    kw = np.zeros(n, dtype=np.float64)
    negative = np.zeros(n, dtype=bool)
    matched_patterns: list[Pattern] = []
    by_score: dict[float, list[np.ndarray]] = {}
    negatives: list[np.ndarray] = []
    stem_set = context.stem_set
    groups = [index.single_stem.get(s) for s in stem_set] + [index.single_exact.get(w) for w in context.word_set]
    for group in groups:
        if group is None:
            continue
        matched_patterns.extend(group.patterns)
        for score, entries_ in group.positive.items():
            by_score.setdefault(score, []).append(entries_)
        if group.negative.size:
            negatives.append(group.negative)
    ordered = sorted(stem_set)
    pairs = [(a, a) for a in ordered] + [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]
    for pair in pairs:
        for pattern in index.postings.get(pair, ()):
            if not stem_set.issuperset(pattern.stems):
                continue
            if pattern.match_type != BROAD and not context.matches(pattern.match_type, pattern.words, pattern.stems):
                continue
            matched_patterns.append(pattern)
            if pattern.positive.size:
                by_score.setdefault(MATCH_SCORES[pattern.match_type], []).append(pattern.positive)
            if pattern.negative.size:
                negatives.append(pattern.negative)
    for score in sorted(by_score):  # ascending, so the best match type's score stays
        kw[np.concatenate(by_score[score])] = score
    if negatives:
        negative[np.concatenate(negatives)] = True
    if vector is None:
        rows = np.flatnonzero(kw > 0)
        exact = np.zeros(rows.size, dtype=np.float32)
        keep = np.ones(rows.size, dtype=bool)
    else:
        exact = index.vectors @ vector
        rows = np.arange(n)
        keep = (kw > 0) | (exact >= EMB_FLOOR)
    if advertiser_id is not None:
        keep &= index.advertiser[rows] == advertiser_id
    idx = rows[keep]
    if idx.size == 0:
        return Selection([], None, None, None, "no_relevant_campaigns")

    sim = exact[keep].astype(np.float64)
    kws = kw[idx]
    emb_rel = np.clip((sim - EMB_LOW) / (EMB_HIGH - EMB_LOW), 0.0, 1.0)
    emb_rel[(sim < EMB_FLOOR) & (kws == 0)] = 0.0
    relevance = 1.0 - (1.0 - kws) * (1.0 - emb_rel)
    ts = now.timestamp()
    today = now.date().toordinal()
    paced_ok = pacing.pacing_allows(
        even=index.even[idx],
        daily_budget_micros=index.daily[idx],
        lifetime_budget_micros=index.lifetime[idx],
        spent_micros=index.spent[idx],
        spent_today_micros=np.where(index.spend_day[idx] == today, index.spent_today[idx], 0),
        max_cost_micros=index.max_cost[idx],
        now=now,
    )
    lang = index.language[idx]
    conditions = [
        negative[idx],
        relevance < RELEVANCE_FLOOR,
        (lang != "") & (lang != (language or "")) & bool(language),
        index.starts[idx] > ts,
        index.ends[idx] <= ts,
        ~index.reserve_ok[idx],
        ~paced_ok,
    ]
    reason = np.select(conditions, list(range(1, len(conditions) + 1)), default=0)
    score = index.value[idx] * relevance

    def candidate(k: int, why: int) -> Candidate:
        i = int(idx[k])
        entry = index.entries[i]
        cand = Candidate(
            index=i,
            entry=entry,
            similarity=float(sim[k]),
            keyword_score=float(kws[k]),
            matched=[p.text for p in matched_patterns if i in p.positive_set],
            relevance=float(relevance[k]),
            excluded=_REASONS[why],
        )
        if not why:
            cand.bid = auction.Bid(
                key=i,
                advertiser_id=entry.advertiser_id,
                bid_type=entry.bid_type,
                bid_micros=entry.bid_micros,
                pctr=entry.pctr,
                relevance=float(relevance[k]),
            )
        return cand

    eligible = np.flatnonzero(reason == 0)
    # Best score first; ties: the lower bid, then the lower index (stable).
    order = eligible[np.lexsort((index.bid[idx[eligible]], -score[eligible]))]
    explained: list[Candidate] = []
    winner: Candidate | None = None
    runner_up: Candidate | None = None
    seen_campaigns: set[int] = set()
    for k in order.tolist():
        if runner_up is not None and len(explained) >= explain:
            break
        entry = index.entries[int(idx[k])]
        if entry.campaign_id in seen_campaigns:
            continue  # one creative per campaign: its best one
        seen_campaigns.add(entry.campaign_id)
        hour, day = frequency.get(entry.campaign_id, (0, 0))
        capped = not pacing.frequency_allows(
            served_last_hour=hour,
            served_last_day=day,
            cap_hour=entry.frequency_cap_hour,
            cap_day=entry.frequency_cap_day,
        )
        cand = None
        if len(explained) < explain:
            cand = candidate(k, _REASONS.index("frequency_cap") if capped else 0)
            explained.append(cand)
        if capped:
            continue
        if winner is None:
            winner = cand or candidate(k, 0)
        elif runner_up is None and entry.advertiser_id != winner.entry.advertiser_id:
            runner_up = cand or candidate(k, 0)
    if len(explained) < explain:
        excluded = np.flatnonzero(reason != 0)
        for k in excluded[np.argsort(-relevance[excluded], kind="stable")][: explain - len(explained)].tolist():
            explained.append(candidate(k, int(reason[k])))
    if winner is None:
        return Selection(explained, None, None, None, "no_eligible_candidates")
    bids = [winner.bid] + ([runner_up.bid] if runner_up else [])
    result = auction.run_auction([b for b in bids if b is not None])
    return Selection(explained, winner, runner_up, result, "")


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
        for (kind, key, text), vector in zip(todo, vectors, strict=True):
            # Cached on the row as the embedding task would (idempotent), so the next build reads it.
            blob, digest = embeddings.to_bytes(vector), embeddings.text_hash(text)
            if kind == "hints":
                hint_cache[key] = vector
                Campaign.objects.filter(pk=key).update(hints_embedding=blob, hints_embedding_hash=digest)
            else:
                creatives[key] = vector
                Creative.objects.filter(pk=entries[key].creative_id).update(embedding=blob, embedding_hash=digest)
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
    return settings.ADS_INDEX_SYNC


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


def is_loaded() -> bool:
    return _index is not None


def reset() -> None:
    """Forget the index (tests, and after a data import)."""
    global _index
    with _lock:
        _index = None
