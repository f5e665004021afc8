"""Auction prices against hand-computed second prices."""

from __future__ import annotations

import pytest

from ads.auction import (
    RESERVE_CPC_MICROS,
    RESERVE_CPM_MICROS,
    Bid,
    impression_cost_micros,
    predicted_ctr,
    run_auction,
)


def test_predicted_ctr_is_smoothed_towards_the_prior():
    assert predicted_ctr(clicks=0, impressions=0) == pytest.approx(0.02)
    # Beta(2, 98) prior: (10 + 2) / (100 + 100)
    assert predicted_ctr(clicks=10, impressions=100) == pytest.approx(0.06)
    # Lots of evidence dominates the prior: (500 + 2) / (10000 + 100)
    assert predicted_ctr(clicks=500, impressions=10_000) == pytest.approx(502 / 10_100)


def test_predicted_ctr_caps_clicks_at_impressions():
    # Far more clicks than impressions (a data error, or click fraud counted before its
    # filter) count as one click per impression: (10 + 2) / (10 + 100), not (5000 + 2) / 110.
    assert predicted_ctr(clicks=5_000, impressions=10) == pytest.approx(12 / 110, rel=1e-12)
    assert predicted_ctr(clicks=5_000, impressions=10) == predicted_ctr(clicks=10, impressions=10)
    # Without impressions there is no evidence at all: the prior.
    assert predicted_ctr(clicks=5_000, impressions=0) == pytest.approx(0.02, rel=1e-12)


def test_cpc_second_price_is_the_bid_needed_to_keep_the_rank():
    a = Bid(key="a", advertiser_id=1, bid_type="cpc", bid_micros=2_000_000, pctr=0.05, relevance=0.8)
    b = Bid(key="b", advertiser_id=2, bid_type="cpc", bid_micros=3_000_000, pctr=0.02, relevance=0.9)
    # scores: a = 2_000_000 * 0.05 * 0.8 = 80_000; b = 3_000_000 * 0.02 * 0.9 = 54_000
    result = run_auction([b, a])
    assert result.winner.key == "a"
    assert result.runner_up.key == "b"
    # a pays 54_000 / (0.05 * 0.8) = 1_350_000 micros per click (not its 2_000_000 bid)
    assert result.price_micros == 1_350_000


def test_relevance_beats_a_bigger_bid():
    relevant = Bid(key="relevant", advertiser_id=1, bid_type="cpc", bid_micros=500_000, pctr=0.02, relevance=1.0)
    rich = Bid(key="rich", advertiser_id=2, bid_type="cpc", bid_micros=1_000_000, pctr=0.02, relevance=0.4)
    # scores: relevant 10_000, rich 8_000 -> relevant wins and pays 8_000 / (0.02 * 1.0) = 400_000
    result = run_auction([rich, relevant])
    assert result.winner.key == "relevant"
    assert result.price_micros == 400_000


def test_cpm_against_cpc_runner_up():
    cpm = Bid(key="cpm", advertiser_id=1, bid_type="cpm", bid_micros=10_000_000, pctr=0.02, relevance=0.5)
    cpc = Bid(key="cpc", advertiser_id=2, bid_type="cpc", bid_micros=200_000, pctr=0.02, relevance=1.0)
    # scores: cpm 10_000_000 / 1000 * 0.5 = 5_000; cpc 200_000 * 0.02 * 1.0 = 4_000
    result = run_auction([cpm, cpc])
    assert result.winner.key == "cpm"
    # CPM price per thousand: 4_000 * 1000 / 0.5 = 8_000_000
    assert result.price_micros == 8_000_000
    assert impression_cost_micros(result.price_micros) == 8_000


def test_price_rounds_up_to_the_micro():
    a = Bid(key="a", advertiser_id=1, bid_type="cpc", bid_micros=1_000_000, pctr=0.03, relevance=1.0)
    b = Bid(key="b", advertiser_id=2, bid_type="cpc", bid_micros=1_000_000, pctr=0.0299, relevance=0.7)
    # runner-up score 20_930; 20_930 / 0.03 = 697_666.67 -> 697_667
    result = run_auction([a, b])
    assert result.price_micros == 697_667
    assert a.score * result.price_micros / a.bid_micros >= b.score


def test_single_bidder_pays_the_reserve():
    only = Bid(key="only", advertiser_id=1, bid_type="cpc", bid_micros=900_000, pctr=0.02, relevance=0.9)
    assert run_auction([only]).price_micros == RESERVE_CPC_MICROS
    cpm = Bid(key="cpm", advertiser_id=1, bid_type="cpm", bid_micros=2_000_000, pctr=0.02, relevance=0.9)
    assert run_auction([cpm]).price_micros == RESERVE_CPM_MICROS


def test_price_is_at_least_the_reserve_and_never_above_the_bid():
    a = Bid(key="a", advertiser_id=1, bid_type="cpc", bid_micros=100_000, pctr=0.5, relevance=1.0)
    low = Bid(key="low", advertiser_id=2, bid_type="cpc", bid_micros=60_000, pctr=0.01, relevance=0.1)
    # needed = 60 / 0.5 = 120 micros, under the reserve -> reserve
    assert run_auction([a, low]).price_micros == RESERVE_CPC_MICROS
    close = Bid(key="close", advertiser_id=1, bid_type="cpc", bid_micros=100_000, pctr=0.02, relevance=1.0)
    tie = Bid(key="tie", advertiser_id=2, bid_type="cpc", bid_micros=100_000, pctr=0.02, relevance=1.0)
    result = run_auction([close, tie])
    assert result.price_micros == 100_000  # equal scores: the winner pays its full bid, no more


def test_bids_below_the_reserve_take_no_part():
    cheap = Bid(key="cheap", advertiser_id=1, bid_type="cpc", bid_micros=RESERVE_CPC_MICROS - 1, pctr=0.9, relevance=1)
    assert run_auction([cheap]) is None


def test_runner_up_is_another_advertiser():
    a1 = Bid(key="a1", advertiser_id=1, bid_type="cpc", bid_micros=1_000_000, pctr=0.02, relevance=1.0)
    a2 = Bid(key="a2", advertiser_id=1, bid_type="cpc", bid_micros=900_000, pctr=0.02, relevance=1.0)
    b = Bid(key="b", advertiser_id=2, bid_type="cpc", bid_micros=500_000, pctr=0.02, relevance=1.0)
    # an advertiser does not set its own price: b (10_000) is the runner-up, not a2 (18_000)
    result = run_auction([a1, a2, b])
    assert result.winner.key == "a1"
    assert result.runner_up.key == "b"
    assert result.price_micros == 500_000
