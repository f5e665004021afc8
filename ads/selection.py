"""Selection against the campaign index: candidates (keywords and embedding
similarity, negative keywords, the relevance floor), eligibility (language,
schedule, reserve, pacing, frequency caps), then the auction.

Vectorised over the whole index (ads/campaign_index.py): a matrix-vector product plus
a handful of Python operations on the few candidates above the floors. The rules are
the scalar code's own (ads/pacing.py, ads/auction.py), applied to arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ads import auction, pacing
from ads.campaign_index import CampaignIndex, Entry, Pattern
from ads.matching import BROAD, MATCH_SCORES, Context

# Relevance: keyword score and embedding score combined as 1 - (1 - kw)(1 - emb), the
# embedding score being the cosine to the entry's nearest text (CampaignIndex.text_vectors).
# Calibrated on the development set (tests/ads/data/matching_dev.json; docs/ads.md,
# "Matching, measured"), never on the held-out one.
EMB_LOW, EMB_HIGH = 0.20, 0.60  # cosine mapped linearly onto relevance 0..1
RELEVANCE_FLOOR = 0.40  # with the map above: a cosine of 0.36 when no keyword matched
EMB_FLOOR = EMB_LOW + RELEVANCE_FLOOR * (EMB_HIGH - EMB_LOW)  # an embedding alone makes a candidate from here
# The earlier turns count at this weight when the latest one follows them up and finds
# no candidate of its own: the latest turn weighs most.
EARLIER_WEIGHT = 0.8
# A candidate this much less relevant than the best one takes no part: a bid must not
# buy a weak match over a clearly better one (keyword or meaning).
RELEVANCE_MARGIN = 0.3


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
    "less_relevant",
    "language",
    "not_started",
    "ended",
    "below_reserve",
    "pacing",
    "frequency_cap",
]


def _keyword_scores(index: CampaignIndex, text: str) -> tuple[np.ndarray, np.ndarray, list[Pattern]]:
    """Per entry: the best match type's score of its keywords in `text`, whether a
    negative keyword of its campaign is in `text`, and the patterns that matched."""
    n = len(index)
    context = Context(text)
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
    return kw, negative, matched_patterns


def _relevance(kw: np.ndarray, sim: np.ndarray) -> np.ndarray:
    emb_rel = np.clip((sim - EMB_LOW) / (EMB_HIGH - EMB_LOW), 0.0, 1.0)
    emb_rel[(sim < EMB_FLOOR) & (kw == 0)] = 0.0
    return 1.0 - (1.0 - kw) * (1.0 - emb_rel)


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
    latest_text: str | None = None,
    latest_vector: np.ndarray | None = None,
    earlier_weight: float = EARLIER_WEIGHT,
) -> Selection:
    """Candidates (keywords + embedding, negatives, floors), eligibility (language,
    schedule, reserve, pacing, frequency caps), then the auction. `explain`: how many
    candidates to describe in the result (a preview asks for more than a decision). `frequency` maps a
    campaign id to (served to this viewer in the last hour, in the last day).

    `context_text` / `vector`: the conversation's recent user turns (latest first) and
    their embedding. With `latest_text` / `latest_vector` (the latest turn alone), the
    latest turn weighs most: relevance is the latest turn's; only when no campaign is
    relevant to the latest turn alone does the whole context count, at earlier_weight
    (0 when the conversation moved on, as the decision judges it), so an earlier
    topic's keywords or meaning never beat the latest turn's. Negative keywords apply
    to the whole context. A candidate more than RELEVANCE_MARGIN below the most
    relevant one is excluded ("less_relevant").

    Vectorised over the whole index; Python loops only over matched keywords and
    the few best-scoring candidates."""
    frequency = frequency or {}
    n = len(index)
    if n == 0:
        return Selection([], None, None, None, "no_active_campaigns")
    use_latest = latest_text is not None
    kw_ctx, negative, patterns_ctx = _keyword_scores(index, context_text)
    kw_latest, _, patterns_latest = _keyword_scores(index, latest_text) if use_latest else (kw_ctx, None, patterns_ctx)
    queries = [v for v in (latest_vector if use_latest else None, vector) if v is not None]
    sims = index.similarities(np.vstack(queries)) if queries else np.zeros((n, 0), dtype=np.float32)
    sim_ctx = sims[:, -1] if vector is not None else np.zeros(n, dtype=np.float32)
    if not use_latest:
        sim_latest = sim_ctx
    else:
        sim_latest = sims[:, 0] if latest_vector is not None else np.zeros(n, dtype=np.float32)
    # Candidates: a keyword or a cosine above the floor, for the latest turn.
    idx = np.flatnonzero((kw_latest > 0) | (sim_latest >= EMB_FLOOR))
    sim = sim_latest[idx].astype(np.float64)
    kws = kw_latest[idx]
    relevance = _relevance(kws, sim)
    from_context = np.zeros(idx.size, dtype=bool)  # the candidate's relevance is the whole context's
    if use_latest and earlier_weight > 0 and not (relevance[~negative[idx]] >= RELEVANCE_FLOOR).any():
        idx = np.flatnonzero((kw_latest > 0) | (sim_latest >= EMB_FLOOR) | (kw_ctx > 0) | (sim_ctx >= EMB_FLOOR))
        sim_l, kw_l = sim_latest[idx].astype(np.float64), kw_latest[idx]
        sim_c, kw_c = sim_ctx[idx].astype(np.float64), kw_ctx[idx]
        own, weighted = _relevance(kw_l, sim_l), earlier_weight * _relevance(kw_c, sim_c)
        from_context = weighted > own
        relevance = np.where(from_context, weighted, own)
        sim = np.where(from_context, sim_c, sim_l)
        kws = np.where(from_context, kw_c, kw_l)
    if advertiser_id is not None:
        mine = index.advertiser[idx] == advertiser_id
        idx, sim, kws, relevance, from_context = idx[mine], sim[mine], kws[mine], relevance[mine], from_context[mine]
    if idx.size == 0:
        return Selection([], None, None, None, "no_relevant_campaigns")

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
    relevant = ~negative[idx] & (relevance >= RELEVANCE_FLOOR)
    best = float(relevance[relevant].max()) if relevant.any() else 1.0
    conditions = [
        negative[idx],
        relevance < RELEVANCE_FLOOR,
        relevance < best - RELEVANCE_MARGIN,
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
            matched=[p.text for p in (patterns_ctx if from_context[k] else patterns_latest) if i in p.positive_set],
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
