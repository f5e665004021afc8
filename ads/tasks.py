"""Celery tasks of the ads app: thin, idempotent, ids in, results ignored."""

from __future__ import annotations

from celery import shared_task

from ads.services import campaigns, funding, reporting, review


@shared_task(name="ads.embed_creative", ignore_result=True)
def embed_creative(creative_id: int) -> None:
    review.creative_embed(creative_id=creative_id)


@shared_task(name="ads.embed_campaign", ignore_result=True)
def embed_campaign(campaign_id: int) -> None:
    campaigns.campaign_embed(campaign_id=campaign_id)


@shared_task(name="ads.stats_rollup", ignore_result=True)
def stats_rollup() -> None:
    reporting.stats_rollup_recent()


@shared_task(name="ads.campaigns_resume_funded", ignore_result=True)
def campaigns_resume_funded() -> None:
    funding.campaigns_resume_funded()


@shared_task(name="ads.send_low_balance_notice", ignore_result=True)
def send_low_balance_notice(advertiser_id: int) -> None:
    funding.advertiser_low_balance_notify(advertiser_id=advertiser_id)
