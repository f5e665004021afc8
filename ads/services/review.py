"""Review: the automatic checks every creative passes (https landing page, display
domain, lengths, plain text, banned claims), the staff review queue (approve, reject
with a reason), and the writes of creatives: create, edit (which sends a creative back
to review), switch on or off, and caching their embeddings. An advertiser's name and
"paid by", which every card shows, go through the same review when they change.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from ads import embeddings
from ads import index as ad_index
from ads.models import Advertiser, AdvertiserIdentityRevision, Campaign, Creative

BANNED_WORDS = (
    "guaranteed cure",
    "miracle",
    "get rich quick",
    "risk-free",
    "100% free money",
    "casino",
    "gambling",
    "bet now",
    "payday loan",
    "crypto giveaway",
    "weight loss pill",
    "viagra",
    "xxx",
    "porn",
    "click here",
    "act now",
    "you have won",
)
LIMITS = {"question": 160, "headline": 60, "text": 180, "display_domain": 100, "landing_url": 500}


def landing_url_is_https(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "https" and bool(parts.hostname)


def creative_check(
    *, question: str, headline: str, text: str, landing_url: str, display_domain: str
) -> dict[str, list[str]]:
    """The automatic review: errors per field (empty when it passes)."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    values = {
        "question": question or "",
        "headline": headline or "",
        "text": text or "",
        "landing_url": landing_url or "",
        "display_domain": display_domain or "",
    }
    for name, value in values.items():
        if not value.strip():
            add(name, "This field is required.")
        elif len(value) > LIMITS[name]:
            add(name, f"At most {LIMITS[name]} characters (this has {len(value)}).")
    url = values["landing_url"].strip()
    parts = urlsplit(url)
    if url and parts.scheme.lower() != "https":
        add("landing_url", f"The landing URL must start with https:// ({parts.scheme or 'no'} scheme given).")
    elif url and not parts.hostname:
        add("landing_url", "The landing URL has no host name.")
    elif url and (parts.username or parts.password):
        add("landing_url", "The landing URL must not contain a user name or password.")
    domain = values["display_domain"].strip().lower().removeprefix("www.")
    host = (parts.hostname or "").lower().removeprefix("www.")
    if domain and host and not (host == domain or host.endswith("." + domain)):
        add("display_domain", f"The display domain must be the landing URL's host ({host}) or a parent of it.")
    if domain and ("/" in domain or " " in domain or "." not in domain):
        add("display_domain", "Give a bare domain such as example.com.")
    for name in ("question", "headline", "text"):
        lowered = values[name].lower()
        for word in BANNED_WORDS:
            if word in lowered:
                add(name, f"“{word}” is not allowed in ads.")
        if any(ch in lowered for ch in "<>") or "javascript:" in lowered:
            add(name, "Ads are plain text: no HTML or script.")
        if values[name] and sum(c.isupper() for c in values[name]) > 0.6 * sum(c.isalpha() for c in values[name]) > 8:
            add(name, "Too many capital letters.")
    return errors


class CreativeInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def creative_fields(creative: Creative) -> dict:
    return {
        "question": creative.question,
        "headline": creative.headline,
        "text": creative.text,
        "landing_url": creative.landing_url,
        "display_domain": creative.display_domain,
    }


def creative_create(
    *, campaign: Campaign, question: str, headline: str, text: str, landing_url: str, display_domain: str
) -> Creative:
    """A new creative: automatic checks first (raises CreativeInvalid), then it waits
    for staff review."""
    fields = {
        "question": question.strip(),
        "headline": headline.strip(),
        "text": text.strip(),
        "landing_url": landing_url.strip(),
        "display_domain": display_domain.strip().lower(),
    }
    errors = creative_check(**fields)
    if errors:
        raise CreativeInvalid(errors)
    creative = Creative.objects.create(campaign=campaign, **fields)
    creative_embed_later(creative_id=creative.id)
    return creative


def creative_update(*, creative: Creative, **changes: str) -> Creative:
    """Edit a creative; any change of what the user sees sends it back to review."""
    fields = creative_fields(creative)
    for name, value in changes.items():
        if name not in fields:
            raise TypeError(f"creative_update() got an unexpected field {name!r}")
        fields[name] = value.strip().lower() if name == "display_domain" else value.strip()
    errors = creative_check(**fields)
    if errors:
        raise CreativeInvalid(errors)
    if fields != creative_fields(creative):
        for name, value in fields.items():
            setattr(creative, name, value)
        creative.review_status = Creative.ReviewStatus.PENDING
        creative.review_reason = ""
        creative.reviewed_by = None
        creative.reviewed_at = None
        creative.save()
        creative_embed_later(creative_id=creative.id)
        transaction.on_commit(ad_index.invalidate)
    return creative


def creative_approve(*, creative: Creative, reviewer) -> Creative:
    """Staff approval; the automatic checks run again so nothing unsafe is approved."""
    errors = creative_check(**creative_fields(creative))
    if errors:
        raise CreativeInvalid(errors)
    creative.review_status = Creative.ReviewStatus.APPROVED
    creative.review_reason = ""
    creative.reviewed_by = reviewer
    creative.reviewed_at = timezone.now()
    creative.save(update_fields=["review_status", "review_reason", "reviewed_by", "reviewed_at", "updated_at"])
    ad_index.invalidate()
    return creative


def creative_reject(*, creative: Creative, reviewer, reason: str) -> Creative:
    if not (reason or "").strip():
        raise ValueError("A rejection needs a reason the advertiser can act on.")
    creative.review_status = Creative.ReviewStatus.REJECTED
    creative.review_reason = reason.strip()
    creative.reviewed_by = reviewer
    creative.reviewed_at = timezone.now()
    creative.save(update_fields=["review_status", "review_reason", "reviewed_by", "reviewed_at", "updated_at"])
    ad_index.invalidate()
    return creative


def creative_set_active(*, creative: Creative, is_active: bool) -> Creative:
    """Switch a creative off (or back on) without sending it back to review."""
    if creative.is_active != is_active:
        creative.is_active = is_active
        creative.save(update_fields=["is_active", "updated_at"])
        transaction.on_commit(ad_index.invalidate)
    return creative


def creative_embed_later(*, creative_id: int) -> None:
    """Cache the creative's embedding in a task once the transaction commits."""
    from ads.tasks import embed_creative

    embed_creative.delay_on_commit(creative_id)


def creative_embed(*, creative_id: int) -> bool:
    """Cache the creative's embedding if its text changed (the index is then rebuilt). Idempotent."""
    creative = Creative.objects.filter(pk=creative_id).first()
    if creative is None:
        return False
    digest = embeddings.text_hash(creative.embedding_text)
    if creative.embedding_hash == digest and creative.embedding:
        return False
    vector = embeddings.embed(creative.embedding_text)
    Creative.objects.filter(pk=creative_id).update(embedding=embeddings.to_bytes(vector), embedding_hash=digest)
    ad_index.invalidate()
    return True


# --- the advertiser's name and "paid by" --------------------------------------------
# Both appear on every card ("Sponsored · <name>", "Paid for by <paid_by>" under "Why
# this ad?"), so a change goes to staff review as an edited creative does. Until staff
# approve it, Advertiser.name and paid_by keep the approved values, which is all the
# cards (the index) ever read.

IDENTITY_LIMITS = {"name": 120, "paid_by": 160}


class AdvertiserIdentityInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class ReviewStateError(Exception):
    """The change was reviewed or replaced already."""


def advertiser_identity_check(*, name: str, paid_by: str) -> dict[str, list[str]]:
    """The automatic checks of a name and "paid by": errors per field (empty when they pass)."""
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors.setdefault("name", []).append("Give your organisation a name.")
    for field_name, value in (("name", name or ""), ("paid_by", paid_by or "")):
        if len(value) > IDENTITY_LIMITS[field_name]:
            errors.setdefault(field_name, []).append(f"At most {IDENTITY_LIMITS[field_name]} characters.")
        lowered = value.lower()
        if any(ch in lowered for ch in "<>") or "javascript:" in lowered:
            errors.setdefault(field_name, []).append("Plain text only: no HTML or script.")
        for word in BANNED_WORDS:
            if word in lowered:
                errors.setdefault(field_name, []).append(f"“{word}” is not allowed on ads.")
    return errors


def advertiser_identity_submit(
    *, advertiser: Advertiser, name: str, paid_by: str, submitted_by=None
) -> AdvertiserIdentityRevision | None:
    """Send a new name or "paid by" to review (raises AdvertiserIdentityInvalid when the
    automatic checks fail). Returns the change waiting for review, or None when the values
    are the approved ones (a change waiting is then withdrawn)."""
    name, paid_by = " ".join((name or "").split()), " ".join((paid_by or "").split())
    errors = advertiser_identity_check(name=name, paid_by=paid_by)
    if errors:
        raise AdvertiserIdentityInvalid(errors)
    Status = AdvertiserIdentityRevision.Status
    with transaction.atomic():
        approved = Advertiser.objects.select_for_update().get(pk=advertiser.pk)
        pending = AdvertiserIdentityRevision.objects.filter(advertiser=approved, status=Status.PENDING)
        if (name, paid_by) == (approved.name, approved.paid_by):
            pending.update(status=Status.WITHDRAWN)
            return None
        current = pending.first()
        if current is not None and (current.name, current.paid_by) == (name, paid_by):
            return current
        pending.update(status=Status.WITHDRAWN)
        return AdvertiserIdentityRevision.objects.create(
            advertiser=approved, name=name, paid_by=paid_by, submitted_by=submitted_by
        )


def _identity_pending(revision: AdvertiserIdentityRevision) -> AdvertiserIdentityRevision:
    locked = AdvertiserIdentityRevision.objects.select_for_update().get(pk=revision.pk)
    if locked.status != AdvertiserIdentityRevision.Status.PENDING:
        raise ReviewStateError(f"This change is {locked.get_status_display().lower()} already.")
    return locked


def advertiser_identity_approve(*, revision: AdvertiserIdentityRevision, reviewer) -> Advertiser:
    """Staff approval: the cards show the new name and "paid by" from now on (the checks run again)."""
    with transaction.atomic():
        revision = _identity_pending(revision)
        errors = advertiser_identity_check(name=revision.name, paid_by=revision.paid_by)
        if errors:
            raise AdvertiserIdentityInvalid(errors)
        now = timezone.now()
        Advertiser.objects.filter(pk=revision.advertiser_id).update(
            name=revision.name, paid_by=revision.paid_by, updated_at=now
        )
        revision.status = AdvertiserIdentityRevision.Status.APPROVED
        revision.reviewed_by, revision.reviewed_at, revision.review_reason = reviewer, now, ""
        revision.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason"])
        transaction.on_commit(ad_index.invalidate)
    return Advertiser.objects.get(pk=revision.advertiser_id)


def advertiser_identity_reject(
    *, revision: AdvertiserIdentityRevision, reviewer, reason: str
) -> AdvertiserIdentityRevision:
    """Staff rejection with a reason the advertiser sees; the cards keep the approved values."""
    if not (reason or "").strip():
        raise ValueError("A rejection needs a reason the advertiser can act on.")
    with transaction.atomic():
        revision = _identity_pending(revision)
        revision.status = AdvertiserIdentityRevision.Status.REJECTED
        revision.review_reason = reason.strip()
        revision.reviewed_by, revision.reviewed_at = reviewer, timezone.now()
        revision.save(update_fields=["status", "review_reason", "reviewed_by", "reviewed_at"])
    return revision
