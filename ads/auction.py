"""Ranking and pricing: a relevance-weighted second-price auction with a reserve.

Each candidate's rank score is its expected value per impression weighted by
relevance:

    CPC: score = bid_per_click  × pCTR × relevance
    CPM: score = bid_per_mille / 1000 × relevance

pCTR is smoothed with a Beta prior (alpha = PRIOR_CTR × PRIOR_STRENGTH, beta = the
rest), so a new creative starts at the prior and moves towards its observed CTR as
evidence accumulates. The winner pays the least bid that would still have kept its
score at or above the runner-up's (the runner-up being the best candidate of another
advertiser), never less than the reserve and never more than its own bid:

    CPC: price = runner_up_score / (pCTR × relevance)
    CPM: price = runner_up_score × 1000 / relevance

rounded up to the micro. With no runner-up the price is the reserve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRIOR_CTR = 0.02
PRIOR_STRENGTH = 100.0
RESERVE_CPC_MICROS = 50_000  # $0.05 per click
RESERVE_CPM_MICROS = 500_000  # $0.50 per thousand impressions


def predicted_ctr(
    *, clicks: int, impressions: int, prior: float = PRIOR_CTR, strength: float = PRIOR_STRENGTH
) -> float:
    """Posterior mean of a Beta(prior × strength, (1 - prior) × strength) prior."""
    alpha = prior * strength
    beta = (1.0 - prior) * strength
    clicks = max(0, min(clicks, impressions))
    return (clicks + alpha) / (impressions + alpha + beta)


def reserve_micros(bid_type: str) -> int:
    return RESERVE_CPC_MICROS if bid_type == "cpc" else RESERVE_CPM_MICROS


def bid_meets_reserve(*, bid_type: str, bid_micros: int) -> bool:
    """Bids under their reserve take no part in the auction."""
    return bid_micros >= reserve_micros(bid_type)


def expected_value_micros(*, bid_type: str, bid_micros: int, pctr: float) -> float:
    """Expected micros per impression before relevance: the bid per click times pCTR,
    or the bid per thousand impressions over 1000."""
    if bid_type == "cpc":
        return bid_micros * pctr
    return bid_micros / 1000.0


def rank_score(*, bid_type: str, bid_micros: int, pctr: float, relevance: float) -> float:
    """Expected micros per impression, weighted by relevance."""
    return expected_value_micros(bid_type=bid_type, bid_micros=bid_micros, pctr=pctr) * relevance


def event_cost_max_micros(*, bid_type: str, bid_micros: int) -> int:
    """The most one billable event can cost: a click its bid (CPC), an impression its
    share of the bid per thousand (CPM)."""
    return bid_micros if bid_type == "cpc" else impression_cost_micros(bid_micros)


@dataclass(frozen=True)
class Bid:
    key: object  # what the caller uses to find the candidate again
    advertiser_id: int
    bid_type: str
    bid_micros: int
    pctr: float
    relevance: float

    @property
    def score(self) -> float:
        return rank_score(bid_type=self.bid_type, bid_micros=self.bid_micros, pctr=self.pctr, relevance=self.relevance)


@dataclass(frozen=True)
class AuctionResult:
    winner: Bid
    runner_up: Bid | None
    price_micros: int  # per click (CPC) or per thousand impressions (CPM)
    reserve_micros: int


def second_price(*, winner: Bid, runner_up: Bid | None) -> int:
    reserve = reserve_micros(winner.bid_type)
    if runner_up is None:
        needed = reserve
    else:
        target = runner_up.score
        if winner.bid_type == "cpc":
            per_unit = winner.pctr * winner.relevance
        else:
            per_unit = winner.relevance / 1000.0
        # Rounded up (with a guard against float noise) so the winner's score stays >= the runner-up's.
        needed = math.ceil(target / per_unit - 1e-9) if per_unit > 0 else winner.bid_micros
    return min(winner.bid_micros, max(reserve, needed))


def run_auction(bids: list[Bid]) -> AuctionResult | None:
    """The highest score wins (ties: the lower bid, then input order); the runner-up is
    the best bid from another advertiser. Bids under their reserve take no part."""
    eligible = [b for b in bids if bid_meets_reserve(bid_type=b.bid_type, bid_micros=b.bid_micros) and b.relevance > 0]
    if not eligible:
        return None
    order = sorted(range(len(eligible)), key=lambda i: (-eligible[i].score, eligible[i].bid_micros, i))
    winner = eligible[order[0]]
    runner_up = next((eligible[i] for i in order[1:] if eligible[i].advertiser_id != winner.advertiser_id), None)
    return AuctionResult(
        winner=winner,
        runner_up=runner_up,
        price_micros=second_price(winner=winner, runner_up=runner_up),
        reserve_micros=reserve_micros(winner.bid_type),
    )


def impression_cost_micros(price_cpm_micros: int) -> int:
    """What one valid CPM impression costs: a thousandth of the price, rounded up."""
    return max(1, -(-price_cpm_micros // 1000))
