"""The ad frame: decided beside the answer, sent after it, never inside the prompt or the stream."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from bench.fake_upstream import Script
from tests.assistant.conftest import chat_requests, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

GPU_QUESTION = "Where can I rent an H100 GPU for a weekend to fine-tune llama?"


@pytest.fixture
def gpu_ad(transactional_db, settings):
    from ads import index as ad_index
    from ads.services.campaigns import campaign_create
    from ads.services.decision import ads_warm_up
    from tests.ads.factories import AdvertiserFactory, CreativeFactory

    settings.ADS_INDEX_SYNC = True
    settings.ADS_DECISION_BUDGET_S = 10.0  # the first decision loads the embedding model
    ad_index.reset()
    advertiser = AdvertiserFactory(name="Northwind Compute", paid_by="Northwind Ltd.", balance_usd=100)
    campaign = campaign_create(
        advertiser=advertiser, name="GPUs", status="active", bid_type="cpc", max_bid_micros=1_000_000,
        keywords="rent gpu\nh100", context_hints="Renting cloud GPUs to train and fine-tune machine learning models.",
    )
    creative = CreativeFactory(
        campaign=campaign, headline="Zebra-striped H100s by the hour", text="Quokka Cloud rents GPUs per second.",
        question="How much does fine-tuning cost at Quokka?", landing_url="https://northwind.example/gpus",
        display_domain="northwind.example",
    )
    ads_warm_up()
    yield creative
    ad_index.reset()


async def test_the_ad_comes_after_done_and_never_reaches_the_model(upstream, tier, member, sessions, gpu_ad):
    upstream.default = Script(tokens=["Try", " a", " cloud", " provider", "."])
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": GPU_QUESTION, "tier": "llama-3.1-8b"})
    frames = await socket.until("done")
    ad_frame = await socket.recv()
    assert ad_frame["type"] == "ad"
    assert (ad_frame["run_id"], ad_frame["conversation_id"]) == (frames[0]["run_id"], frames[0]["conversation_id"])
    assert ad_frame["ad"]["headline"] == "Zebra-striped H100s by the hour"
    assert ad_frame["ad"]["advertiser"] == "Northwind Compute"
    from ads.models import Impression

    impression = await sync_to_async(Impression.objects.get)(pk=ad_frame["ad"]["impression_id"])
    assert impression.sent_at is not None and impression.sent_at >= impression.served_at  # acks count from it
    # Answer independence: nothing of the ad in any request the inference server received.
    await socket.send({"type": "message.send", "client_id": "c2", "conversation_id": frames[0]["conversation_id"],
                       "content": "And for a month?", "tier": "llama-3.1-8b"})
    await socket.until("done")
    bodies = upstream.requests
    assert len(chat_requests(upstream)) == 2
    sent = "\n".join(str(body) for body in bodies)
    for needle in ("Zebra", "Quokka", "Northwind", "northwind.example", ad_frame["ad"]["impression_id"]):
        assert needle not in sent
    streamed = "".join(f.get("text", "") for f in frames)
    assert "Zebra" not in streamed and "Quokka" not in streamed
    # A resync after the end replays the ad too.
    await socket.send({"type": "run.subscribe", "run_id": frames[0]["run_id"], "after_seq": 0})
    replay = []
    while len(replay) < 3:  # (the second answer's own ad may still be on its way)
        frame = await socket.recv()
        if frame.get("run_id") == frames[0]["run_id"]:
            replay.append(frame)
    assert [f["type"] for f in replay] == ["run.resync", "done", "ad"]
    assert replay[2]["ad"] == ad_frame["ad"]
    await socket.close()


def _slow_decisions(monkeypatch, seconds: float) -> None:
    """Every ad decision takes `seconds` longer (then decides as usual)."""
    import time

    from ads.services import decision

    real_decide = decision.ad_decide

    def slow_decide(**kwargs):
        time.sleep(seconds)
        return real_decide(**kwargs)

    monkeypatch.setattr(decision, "ad_decide", slow_decide)


async def test_a_late_ad_decision_means_no_ad_not_a_slower_answer(
    upstream, tier, member, sessions, gpu_ad, settings, monkeypatch
):
    """Over its budget and still running when the answer ends: given up, no ad, and the
    answer's `done` and `end` do not wait for it."""
    import time

    settings.ADS_DECISION_BUDGET_S = 0.05
    _slow_decisions(monkeypatch, 3.0)
    socket = await open_socket(sessions["member"])
    started = time.monotonic()
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": GPU_QUESTION, "tier": "llama-3.1-8b"})
    frames = await socket.until("done")
    assert time.monotonic() - started < 2.5  # not the decision's 3 s
    assert frames[-1]["status"] == "complete"
    assert await socket.nothing(3.5)  # the decision ends at 3 s: its ad is never sent
    await socket.close()


async def test_a_decision_past_its_budget_that_ends_before_the_answer_gets_its_card(
    upstream, tier, member, sessions, gpu_ad, settings, monkeypatch
):
    """The card is shown after the answer, so a decision slower than its budget is still in
    time while the answer is being written (a CPU model's answer takes seconds)."""
    settings.ADS_DECISION_BUDGET_S = 0.05
    _slow_decisions(monkeypatch, 0.4)
    upstream.default = Script(tokens=["Rent ", "one ", "by ", "the ", "hour ", "here."], interval=0.25)
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": GPU_QUESTION, "tier": "llama-3.1-8b"})
    frames = await socket.until("ad")
    types = [f["type"] for f in frames]
    assert types.index("done") < types.index("ad")
    assert frames[-1]["ad"]["headline"] == "Zebra-striped H100s by the hour"
    await socket.close()


async def test_no_ad_on_an_ad_free_plan(upstream, tier, member, sessions, gpu_ad, free_plan):
    await sync_to_async(type(free_plan).objects.filter(pk=free_plan.pk).update)(ads_enabled=False)
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": GPU_QUESTION, "tier": "llama-3.1-8b"})
    await socket.until("done")
    assert await socket.nothing(0.5)
    await socket.close()
