"""Celery tasks of the ads app: thin, idempotent, ids in, results ignored."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from ads import index as ad_index
from ads.services import campaigns, reporting, review


@shared_task(name="ads.embed_creative", ignore_result=True)
def embed_creative(creative_id: int) -> None:
    if review.creative_embed(creative_id=creative_id):
        ad_index.invalidate()


@shared_task(name="ads.embed_campaign", ignore_result=True)
def embed_campaign(campaign_id: int) -> None:
    if campaigns.campaign_embed(campaign_id=campaign_id):
        ad_index.invalidate()


@shared_task(name="ads.stats_rollup", ignore_result=True)
def stats_rollup() -> None:
    reporting.stats_rollup_recent()


@shared_task(name="ads.campaigns_resume_funded", ignore_result=True)
def campaigns_resume_funded() -> None:
    campaigns.campaigns_resume_funded()


@shared_task(name="ads.send_low_balance_notice", ignore_result=True)
def send_low_balance_notice(advertiser_id: int) -> None:
    from ads.models import Advertiser, AdvertiserMembership
    from billing.public import balance_micros

    advertiser = Advertiser.objects.filter(pk=advertiser_id, low_balance_notified_at__isnull=False).first()
    if advertiser is None:
        return
    owners = AdvertiserMembership.objects.filter(advertiser=advertiser, role=AdvertiserMembership.Role.OWNER)
    recipients = sorted({advertiser.contact_email, *owners.values_list("user__email", flat=True)} - {""})
    if not recipients:
        return
    balance = balance_micros(account_id=advertiser.balance_account_id) / 1_000_000
    send_mail(
        subject=f"Lhama Ads: the balance of {advertiser.name} is low",
        message=(
            f"The prepaid balance of {advertiser.name} is ${balance:.2f}, below your notice threshold of "
            f"${advertiser.low_balance_threshold_micros / 1_000_000:.2f}. Campaigns pause when it reaches zero.\n\n"
            f"Top up: {settings.SITE_URL}/ads/\n"
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=False,
    )
