"""Inviting a member (issue 9): the owner's answer is the same whether or not an account
uses the e-mail, and nobody becomes a member until they accept the invitation, signed in
with the e-mail it was sent to."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.urls import reverse

from ads.models import AdvertiserMembership
from ads.services import campaigns
from tests.ads.factories import AdvertiserFactory, MembershipFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Role = AdvertiserMembership.Role


def url(name: str, *args) -> str:
    return reverse(f"ads:dashboard:{name}", args=args)


@pytest.fixture
def advertiser(user):
    advertiser = AdvertiserFactory(name="Acme GPU Cloud")
    MembershipFactory(user=user, advertiser=advertiser, role=Role.OWNER)
    return advertiser


@pytest.fixture
def owner_client(client, user, advertiser):
    client.force_login(user)
    return client


def invite(client, email: str, role: str = "viewer"):
    """The response, and the messages the page it leads to shows."""
    response = client.post(url("member_invite"), {"email": email, "role": role})
    if response.status_code != 302:
        return response, []
    return response, [str(m) for m in get_messages(client.get(response["Location"]).wsgi_request)]


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/ads/join/\S+/)", message.body).group(1)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_answer_is_the_same_whether_or_not_an_account_uses_the_email(owner_client, advertiser):
    UserFactory(email="colleague@example.com")
    known, known_messages = invite(owner_client, "Colleague@Example.com")
    unknown, unknown_messages = invite(owner_client, "nobody@example.com")

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (
        302, url("overview") + "#members")
    template = "We sent an invitation to {}. They become a viewer of Acme GPU Cloud once they accept it, signed in with that address."
    assert known_messages == [template.format("colleague@example.com")]
    assert unknown_messages == [template.format("nobody@example.com")]
    # Both get the same e-mail; neither is a member yet.
    assert [m.to for m in mail.outbox] == [["colleague@example.com"], ["nobody@example.com"]]
    assert mail.outbox[0].subject == mail.outbox[1].subject == "You are invited to Acme GPU Cloud on Lhama Ads"
    assert AdvertiserMembership.objects.filter(advertiser=advertiser).count() == 1


def test_the_invited_person_becomes_a_member_by_accepting(owner_client, advertiser):
    colleague = UserFactory(email="colleague@example.com")
    invite(owner_client, "colleague@example.com", role="manager")
    link = link_in(mail.outbox[0])
    client = signed_in(colleague)

    page = client.get(link)
    assert page.status_code == 200
    assert "Accept the invitation" in page.content.decode()
    assert not AdvertiserMembership.objects.filter(user=colleague).exists()  # opening the link is not accepting

    response = client.post(link)
    assert (response.status_code, response["Location"]) == (302, url("overview"))
    membership = AdvertiserMembership.objects.get(user=colleague)
    assert (membership.advertiser, membership.role) == (advertiser, Role.MANAGER)


def test_someone_without_an_account_signs_up_with_the_address_then_accepts(owner_client, advertiser):
    invite(owner_client, "newcomer@example.com")
    link = link_in(mail.outbox[0])
    assert Client().get(link).status_code == 302  # sign in first
    newcomer = UserFactory(email="newcomer@example.com")
    assert signed_in(newcomer).post(link).status_code == 302
    assert AdvertiserMembership.objects.get(user=newcomer).role == Role.VIEWER


def test_another_account_cannot_accept_it(owner_client, advertiser):
    UserFactory(email="colleague@example.com")
    invite(owner_client, "colleague@example.com")
    link = link_in(mail.outbox[0])
    intruder = UserFactory(email="intruder@example.com")
    client = signed_in(intruder)
    assert client.get(link).status_code == 400
    response = client.post(link)
    assert response.status_code == 400
    assert "This invitation cannot be used" in response.content.decode()
    assert not AdvertiserMembership.objects.filter(user=intruder).exists()


def test_a_forged_an_expired_or_an_orphaned_invitation_is_refused(owner_client, user, advertiser, monkeypatch):
    colleague = UserFactory(email="colleague@example.com")
    invite(owner_client, "colleague@example.com", role="owner")
    link = link_in(mail.outbox[0])
    client = signed_in(colleague)

    token = link.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.post(url("member_accept", forged)).status_code == 400

    monkeypatch.setattr(campaigns, "INVITATION_MAX_AGE_S", -1)
    assert client.post(link).status_code == 400
    monkeypatch.undo()

    AdvertiserMembership.objects.filter(user=user).update(role=Role.VIEWER)  # the sender is no longer an owner
    assert client.post(link).status_code == 400
    assert not AdvertiserMembership.objects.filter(user=colleague).exists()


def test_accepting_never_changes_an_existing_members_role(owner_client, advertiser):
    colleague = UserFactory(email="colleague@example.com")
    invite(owner_client, "colleague@example.com", role="owner")
    link = link_in(mail.outbox[0])
    MembershipFactory(user=colleague, advertiser=advertiser, role=Role.VIEWER)
    assert signed_in(colleague).post(link).status_code == 302
    assert AdvertiserMembership.objects.get(user=colleague).role == Role.VIEWER


def test_inviting_a_member_is_refused(owner_client, user):
    response, _ = invite(owner_client, user.email)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert mail.outbox == []
