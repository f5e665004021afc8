from __future__ import annotations

import factory

from billing.models import BalanceAccount, Customer, Subscription
from tests.factories import UserFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    stripe_customer_id = factory.Sequence(lambda n: f"cus_test{n:06d}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_test{n:06d}")
    status = Subscription.Status.ACTIVE


class BalanceAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BalanceAccount

    name = factory.Sequence(lambda n: f"Advertiser {n}")
