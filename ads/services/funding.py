"""Funding: what the advertiser's balance does to their campaigns. The low-balance
notice, pausing every active campaign when billing says the balance is at or below
zero (a refund or a dispute of a top-up that was spent already), and resuming those
paused for the balance once a top-up brings it above zero. Charging itself (which also
pauses when the balance runs out) is ads/services/delivery.py.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from ads import index as ad_index
from ads.models import Advertiser, AdvertiserMembership, Campaign
from billing.public import balance_micros


def advertiser_low_balance_notify(*, advertiser_id: int) -> bool:
    """E-mail the contact and the owners that the balance is below the notice threshold
    (charging flags the advertiser once, then queues this). False when there is no one
    to tell, or the flag was cleared (topped up) in the meantime."""
    advertiser = Advertiser.objects.filter(pk=advertiser_id, low_balance_notified_at__isnull=False).first()
    if advertiser is None:
        return False
    owners = AdvertiserMembership.objects.filter(advertiser=advertiser, role=AdvertiserMembership.Role.OWNER)
    recipients = sorted({advertiser.contact_email, *owners.values_list("user__email", flat=True)} - {""})
    if not recipients:
        return False
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
    return True


def advertiser_balance_changed(*, account_id: int) -> None:
    """Billing moved money outside ad spend (a top-up, a refund, a dispute; wired by
    settings.BILLING_BALANCE_CHANGED): at or below zero the advertiser's active campaigns
    pause (reason: balance); above it, those paused for the balance resume."""
    advertiser = Advertiser.objects.filter(balance_account_id=account_id).first()
    if advertiser is None:
        return
    if balance_micros(account_id=account_id) <= 0:
        paused = Campaign.objects.filter(advertiser=advertiser, status=Campaign.Status.ACTIVE).update(
            status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BALANCE
        )
        if paused:
            transaction.on_commit(ad_index.invalidate)
    else:
        campaigns_resume_funded(advertiser_id=advertiser.pk)


def campaigns_resume_funded(*, advertiser_id: int | None = None) -> int:
    """Campaigns paused for an empty balance resume once it is topped up; the
    low-balance flag clears once the balance is back above the threshold."""
    resumed = 0
    advertisers = Advertiser.objects.all() if advertiser_id is None else Advertiser.objects.filter(pk=advertiser_id)
    for advertiser in advertisers.filter(campaigns__pause_reason=Campaign.PauseReason.BALANCE).distinct():
        if balance_micros(account_id=advertiser.balance_account_id) > 0:
            resumed += Campaign.objects.filter(
                advertiser=advertiser, status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.BALANCE
            ).update(status=Campaign.Status.ACTIVE, pause_reason="")
    for advertiser in advertisers.filter(low_balance_notified_at__isnull=False):
        if balance_micros(account_id=advertiser.balance_account_id) >= advertiser.low_balance_threshold_micros:
            Advertiser.objects.filter(pk=advertiser.pk).update(low_balance_notified_at=None)
    if resumed:
        transaction.on_commit(ad_index.invalidate)
    return resumed
