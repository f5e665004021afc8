"""The in-memory index of servable ads: its structure, and building it.

A decision must not query the campaign tables (10k+ rows) each time, so every
process keeps the servable (campaign, creative) pairs in memory: their embeddings as
one float32 matrix, their keywords in an inverted index, bids and budgets in plain
fields, and per-entry columns of the auction's own rules (ads/auction.py) so that
ads/selection.py can apply them to every entry at once. Loading it from the database
and keeping it fresh is ads/index.py.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ads import auction, embeddings
from ads.matching import EXACT, MATCH_SCORES


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
    # (m, DIM): every text an entry is described by, one row each, the rows of one entry
    # contiguous and in entry order: the creative (headline, text, question), the
    # campaign's context hints, and any extra texts (the creative's question on its
    # own, each keyword phrase). An entry's similarity to a conversation is the best of
    # its rows (np.maximum.reduceat over text_start), not the similarity to one
    # centroid: a short question lies near one of a campaign's texts, rarely near
    # their mean.
    text_vectors: np.ndarray
    text_start: np.ndarray  # (n,) the first row of each entry in text_vectors
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

    def similarities(self, queries: np.ndarray) -> np.ndarray:
        """(n, k): per entry, the cosine of its nearest text to each of the k query
        vectors (rows of `queries`, normalised). One pass over the text matrix."""
        if not len(self.entries):
            return np.zeros((0, queries.shape[0]), dtype=np.float32)
        products = self.text_vectors @ (queries[0] if queries.shape[0] == 1 else np.ascontiguousarray(queries.T))
        return np.maximum.reduceat(products.reshape(len(self.text_vectors), -1), self.text_start, axis=0)

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
    texts: list[list[np.ndarray]] | None = None,
    version: object = None,
) -> CampaignIndex:
    """`hints` and `creatives`: one vector per entry (hints None when the campaign has
    none); `texts`: per entry, the vectors of its extra texts (none when omitted)."""
    n = len(entries)
    rows: list[np.ndarray] = []
    start = np.zeros(n, dtype=np.int64)
    for i in range(n):
        start[i] = len(rows)
        rows.append(creatives[i])
        if hints[i] is not None:
            rows.append(hints[i])
        if texts is not None:
            rows.extend(texts[i])
    matrix = np.vstack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, embeddings.DIM), np.float32)
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
        text_vectors=matrix,
        text_start=start,
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
