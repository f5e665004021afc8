"""Campaigns and advertisers: organisations and their members (invited by a signed
link, members once they accept), campaigns (create, edit with validation, pause, launch
or resume, end, duplicate), their keywords and the embedding of their context hints.
What the balance does to campaigns (pausing, resuming, the low-balance notice) is
ads/services/funding.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from ads import auction, embeddings
from ads import index as ad_index
from ads.matching import Keyword, parse_keywords
from ads.models import (
    Advertiser,
    AdvertiserIdentityRevision,
    AdvertiserMembership,
    Campaign,
    CampaignKeyword,
    Creative,
)
from ads.services.review import advertiser_identity_submit, creative_fields
from billing.public import balance_account_create, balance_micros

# --- advertisers ------------------------------------------------------------------------


def advertiser_create(
    *, name: str, owner=None, paid_by: str = "", website: str = "", contact_email: str = ""
) -> Advertiser:
    """An organisation with its own balance account; `owner` becomes its first member."""
    name = (name or "").strip()
    if not name:
        raise ValueError("An advertiser needs a name.")
    with transaction.atomic():
        account = balance_account_create(name=f"Advertiser: {name}"[:200])
        advertiser = Advertiser.objects.create(
            name=name[:120],
            paid_by=paid_by.strip()[:160],
            website=website.strip(),
            contact_email=contact_email.strip() or (getattr(owner, "email", "") or ""),
            balance_account=account,
        )
        if owner is not None:
            AdvertiserMembership.objects.create(advertiser=advertiser, user=owner, role=AdvertiserMembership.Role.OWNER)
    return advertiser


def advertiser_member_add(
    *, advertiser: Advertiser, user, role: str = AdvertiserMembership.Role.MANAGER
) -> AdvertiserMembership:
    if role not in AdvertiserMembership.Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    try:
        membership, created = AdvertiserMembership.objects.get_or_create(
            advertiser=advertiser, user=user, defaults={"role": role}
        )
    except IntegrityError:  # a concurrent add of the same member
        membership, created = AdvertiserMembership.objects.get(advertiser=advertiser, user=user), False
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


# --- invitations ------------------------------------------------------------------------
# An invitation is a signed, expiring token (Django's signing: HMAC with SECRET_KEY and a
# salt of its own) naming the organisation, the invited e-mail, the role and the owner who
# sent it; it is e-mailed to that address and nowhere else. Nothing is looked up about the
# e-mail when it is sent, so the owner learns nothing about who has an account, and
# nobody becomes a member until the person signed in with that e-mail accepts.

INVITATION_SALT = "ads.member-invitation"
INVITATION_MAX_AGE_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Invitation:
    advertiser: Advertiser
    email: str
    role: str
    invited_by_id: int


class InvitationInvalid(Exception):
    """A token that is forged, expired, for another e-mail, or whose sender is no longer an owner."""


def advertiser_invitation_send(*, advertiser: Advertiser, email: str, role: str, invited_by) -> str:
    """E-mail `email` a link to join `advertiser` as `role`; returns the token. The same
    happens whether or not an account uses the address."""
    if role not in AdvertiserMembership.Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    email = email.strip().lower()
    token = signing.dumps(
        {"a": advertiser.pk, "e": email, "r": role, "by": invited_by.pk}, salt=INVITATION_SALT, compress=True
    )
    link = settings.SITE_URL + reverse("ads:dashboard:member_accept", args=[token])
    role_label = AdvertiserMembership.Role(role).label.lower()
    days = INVITATION_MAX_AGE_S // 86400
    send_mail(
        subject=f"You are invited to {advertiser.name} on Lhama Ads",
        message=(
            f"{invited_by.email} invites you to join {advertiser.name} on Lhama Ads as a {role_label}.\n\n"
            f"To accept, sign in (or sign up) with this e-mail address, {email}, and open:\n{link}\n\n"
            f"The link works for {days} days. If you did not expect this, ignore this e-mail."
        ),
        from_email=None,
        recipient_list=[email],
    )
    return token


def advertiser_invitation_read(*, token: str) -> Invitation:
    """The invitation a token carries; raises InvitationInvalid."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE_S)
        advertiser_id, email, role, invited_by_id = int(data["a"]), str(data["e"]), str(data["r"]), int(data["by"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvitationInvalid("forged or expired") from exc
    advertiser = Advertiser.objects.filter(pk=advertiser_id).first()
    if advertiser is None or role not in AdvertiserMembership.Role.values:
        raise InvitationInvalid("no such organisation or role")
    if not AdvertiserMembership.objects.filter(
        advertiser=advertiser, user_id=invited_by_id, role=AdvertiserMembership.Role.OWNER
    ).exists():
        raise InvitationInvalid("its sender is no longer an owner")
    return Invitation(advertiser=advertiser, email=email, role=role, invited_by_id=invited_by_id)


def advertiser_invitation_accept(*, token: str, user) -> AdvertiserMembership:
    """`user` accepts: they become a member with the invited role, if the invitation is for
    their e-mail. An existing member keeps the role they have (an old link changes nothing)."""
    invitation = advertiser_invitation_read(token=token)
    if not user.is_authenticated or (user.email or "").lower() != invitation.email:
        raise InvitationInvalid("for another e-mail")
    try:
        membership, _ = AdvertiserMembership.objects.get_or_create(
            advertiser=invitation.advertiser, user=user, defaults={"role": invitation.role}
        )
    except IntegrityError:  # accepted twice at once
        membership = AdvertiserMembership.objects.get(advertiser=invitation.advertiser, user=user)
    return membership


def advertiser_update(
    *, advertiser: Advertiser, name: str, paid_by: str, website: str, contact_email: str, submitted_by=None
) -> AdvertiserIdentityRevision | None:
    """The organisation's details. The website and contact are saved at once; the name and
    "paid by" appear on every card, so a change of them goes to staff review and the cards
    keep the approved ones until then. Returns the change waiting for review, if any
    (raises AdvertiserIdentityInvalid when the automatic checks fail; nothing is saved)."""
    with transaction.atomic():
        revision = advertiser_identity_submit(
            advertiser=advertiser, name=name, paid_by=paid_by, submitted_by=submitted_by
        )
        advertiser.website = website.strip()
        advertiser.contact_email = contact_email.strip()
        advertiser.save(update_fields=["website", "contact_email", "updated_at"])
    return revision


# --- campaigns --------------------------------------------------------------------------


CAMPAIGN_FIELDS = {
    "name",
    "status",
    "starts_at",
    "ends_at",
    "daily_budget_micros",
    "lifetime_budget_micros",
    "pacing",
    "bid_type",
    "max_bid_micros",
    "frequency_cap_hour",
    "frequency_cap_day",
    "language",
    "context_hints",
}


def campaign_check(*, values: dict) -> dict[str, str]:
    """The rules a campaign's settings must follow: errors per field (empty when they pass)."""
    errors: dict[str, str] = {}
    if not str(values.get("name", "")).strip():
        errors["name"] = "A campaign needs a name."
    if values.get("status") not in Campaign.Status.values:
        errors["status"] = f"One of {', '.join(Campaign.Status.values)}."
    if values.get("pacing") not in Campaign.Pacing.values:
        errors["pacing"] = f"One of {', '.join(Campaign.Pacing.values)}."
    if values.get("bid_type") not in Campaign.BidType.values:
        errors["bid_type"] = f"One of {', '.join(Campaign.BidType.values)}."
    bid = values.get("max_bid_micros")
    if not isinstance(bid, int) or bid <= 0:
        errors["max_bid_micros"] = "The bid must be a positive amount."
    elif bid < auction.reserve_micros(values.get("bid_type", "cpc")):
        reserve = auction.reserve_micros(values.get("bid_type", "cpc")) / 1_000_000
        errors["max_bid_micros"] = f"The bid is below the reserve price (${reserve:.2f})."
    for name in ("daily_budget_micros", "lifetime_budget_micros"):
        if not isinstance(values.get(name), int) or values[name] < 0:
            errors[name] = "Budgets are amounts of zero or more."
    if not errors and values["daily_budget_micros"] > values["lifetime_budget_micros"]:
        errors["daily_budget_micros"] = "The daily budget cannot exceed the lifetime budget."
    if values.get("starts_at") and values.get("ends_at") and values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "The end must be after the start."
    for name in ("frequency_cap_hour", "frequency_cap_day"):
        cap = values.get(name)
        if cap is not None and (not isinstance(cap, int) or cap < 1 or cap > 1000):
            errors[name] = "A cap is a whole number from 1 to 1000, or empty for none."
    if len(values.get("context_hints") or "") > 2000:
        errors["context_hints"] = "At most 2000 characters."
    return errors


class CampaignInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def campaign_create(*, advertiser: Advertiser, keywords: str | list[Keyword] = "", **values) -> Campaign:
    unknown = set(values) - CAMPAIGN_FIELDS
    if unknown:
        raise TypeError(f"campaign_create() got unexpected fields {sorted(unknown)}")
    defaults = {f.name: f.get_default() for f in Campaign._meta.concrete_fields if f.name in CAMPAIGN_FIELDS}
    merged = {**defaults, **values}
    errors = campaign_check(values=merged)
    parsed = campaign_keywords_parse(keywords=keywords, errors=errors)
    if errors:
        raise CampaignInvalid(errors)
    with transaction.atomic():
        campaign = Campaign.objects.create(advertiser=advertiser, **merged)
        _keywords_replace(campaign=campaign, keywords=parsed)
    campaign_embed_later(campaign_id=campaign.id)
    transaction.on_commit(ad_index.invalidate)
    return campaign


def campaign_update(*, campaign: Campaign, keywords: str | list[Keyword] | None = None, **values) -> Campaign:
    unknown = set(values) - CAMPAIGN_FIELDS
    if unknown:
        raise TypeError(f"campaign_update() got unexpected fields {sorted(unknown)}")
    merged = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS} | values
    errors = campaign_check(values=merged)
    parsed = campaign_keywords_parse(keywords=keywords, errors=errors) if keywords is not None else None
    if errors:
        raise CampaignInvalid(errors)
    with transaction.atomic():
        for name, value in values.items():
            setattr(campaign, name, value)
        if values.get("status") == Campaign.Status.ACTIVE:
            campaign.pause_reason = ""
        elif values.get("status") == Campaign.Status.PAUSED and not campaign.pause_reason:
            campaign.pause_reason = Campaign.PauseReason.ADVERTISER
        campaign.save()
        if parsed is not None:
            _keywords_replace(campaign=campaign, keywords=parsed)
    if "context_hints" in values:
        campaign_embed_later(campaign_id=campaign.id)
    transaction.on_commit(ad_index.invalidate)
    return campaign


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Pause, resume (activate) or end a campaign."""
    if status not in Campaign.Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    campaign.status = status
    campaign.pause_reason = Campaign.PauseReason.ADVERTISER if status == Campaign.Status.PAUSED else ""
    campaign.save(update_fields=["status", "pause_reason", "updated_at"])
    transaction.on_commit(ad_index.invalidate)
    return campaign


class CampaignStateError(Exception):
    """The campaign cannot make this change now (the message says why)."""


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    """The advertiser pauses an active campaign."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.ACTIVE:
        raise CampaignStateError(
            f"Only an active campaign can be paused; this one is {campaign.get_status_display().lower()}."
        )
    return campaign_set_status(campaign=campaign, status=Campaign.Status.PAUSED)


@transaction.atomic
def campaign_activate(*, campaign: Campaign) -> Campaign:
    """Launch a draft or resume a paused campaign. A campaign paused by staff stays paused;
    one that ran out of budget or balance needs more first."""
    campaign = Campaign.objects.select_for_update().select_related("advertiser").get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise CampaignStateError(
            f"This campaign is {campaign.get_status_display().lower()}; it cannot be started again."
        )
    if campaign.pause_reason == Campaign.PauseReason.STAFF:
        raise CampaignStateError("Our staff paused this campaign; contact us to resume it.")
    if campaign.spent_micros >= campaign.lifetime_budget_micros:
        raise CampaignStateError("The lifetime budget is spent: raise it before resuming.")
    if balance_micros(account_id=campaign.advertiser.balance_account_id) <= 0:
        raise CampaignStateError("Your balance is empty: top up before starting this campaign.")
    if not campaign.advertiser.is_active:
        raise CampaignStateError("This advertiser account is switched off; contact us.")
    return campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE)


def campaign_duplicate(*, campaign: Campaign) -> Campaign:
    """A draft copy with the same settings, keywords and creatives (which go back to review)."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            advertiser=campaign.advertiser,
            **{n: getattr(campaign, n) for n in CAMPAIGN_FIELDS if n not in ("name", "status")},
            name=f"{campaign.name} (copy)"[:120],
            status=Campaign.Status.DRAFT,
            hints_embedding=campaign.hints_embedding,
            hints_embedding_hash=campaign.hints_embedding_hash,
        )
        CampaignKeyword.objects.bulk_create(
            CampaignKeyword(campaign=copy, text=k.text, match_type=k.match_type, is_negative=k.is_negative)
            for k in campaign.keywords.all()
        )
        for creative in campaign.creatives.all():
            Creative.objects.create(
                campaign=copy,
                **creative_fields(creative),
                embedding=creative.embedding,
                embedding_hash=creative.embedding_hash,
            )
    return copy


def campaign_keywords_parse(*, keywords: str | list, errors: dict) -> list[Keyword]:
    """Keywords as text (one per line), a list of lines, or parsed already; a problem goes into `errors`."""
    if isinstance(keywords, list) and all(isinstance(k, Keyword) for k in keywords):
        return keywords
    text = "\n".join(keywords) if isinstance(keywords, list) else (keywords or "")
    try:
        parsed = parse_keywords(text)
    except ValueError as exc:
        errors["keywords"] = str(exc)
        return []
    if len(parsed) > 200:
        errors["keywords"] = "At most 200 keywords per campaign."
    return parsed


def _keywords_replace(*, campaign: Campaign, keywords: list[Keyword]) -> None:
    campaign.keywords.all().delete()
    CampaignKeyword.objects.bulk_create(
        CampaignKeyword(campaign=campaign, text=k.text, match_type=k.match_type, is_negative=k.is_negative)
        for k in keywords
    )


def campaign_embed_later(*, campaign_id: int) -> None:
    """Cache the embedding of the campaign's context hints in a task once the transaction commits."""
    from ads.tasks import embed_campaign

    embed_campaign.delay_on_commit(campaign_id)


def campaign_embed(*, campaign_id: int) -> bool:
    """Cache the embedding of the campaign's context hints if they changed (the index is then
    rebuilt). Idempotent."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    digest = embeddings.text_hash(campaign.context_hints)
    if campaign.hints_embedding_hash == digest and (campaign.hints_embedding or not campaign.context_hints.strip()):
        return False
    vector = embeddings.embed(campaign.context_hints) if campaign.context_hints.strip() else None
    Campaign.objects.filter(pk=campaign_id).update(
        hints_embedding=embeddings.to_bytes(vector) if vector is not None else None, hints_embedding_hash=digest
    )
    ad_index.invalidate()
    return True
