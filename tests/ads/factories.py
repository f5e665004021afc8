from __future__ import annotations

import factory

from ads.models import Advertiser, AdvertiserMembership, Campaign, Creative
from billing.ledger import balance_account_create, ledger_credit


class AdvertiserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Advertiser
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Advertiser {n}")
    balance_account = factory.LazyAttribute(lambda o: balance_account_create(name=f"Advertiser: {o.name}"))

    @factory.post_generation
    def balance_usd(obj, create, extracted, **kwargs):
        if create and extracted:
            ledger_credit(
                account_id=obj.balance_account_id,
                amount_micros=int(extracted * 1_000_000),
                reference=f"test-credit:{obj.pk}",
            )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdvertiserMembership

    advertiser = factory.SubFactory(AdvertiserFactory)
    role = AdvertiserMembership.Role.OWNER


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    advertiser = factory.SubFactory(AdvertiserFactory, balance_usd=100)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    status = Campaign.Status.ACTIVE
    bid_type = Campaign.BidType.CPC
    max_bid_micros = 1_000_000
    daily_budget_micros = 50_000_000
    lifetime_budget_micros = 500_000_000
    pacing = Campaign.Pacing.ASAP


class CreativeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Creative

    campaign = factory.SubFactory(CampaignFactory)
    question = "How do I pick a good one?"
    headline = factory.Sequence(lambda n: f"Headline {n}")
    text = "A short, honest description."
    landing_url = "https://shop.example/landing"
    display_domain = "shop.example"
    review_status = Creative.ReviewStatus.APPROVED
