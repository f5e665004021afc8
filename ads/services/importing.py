"""Import advertisers, campaigns and creatives from the JSON format in docs/ads.md.

The whole file is validated before anything is written; then it is written in one
transaction, so a bad file changes nothing. Advertisers are matched by name,
campaigns by (advertiser, name), creatives by (campaign, headline): importing the
same file again updates rather than duplicates. Creatives go through the automatic
review; `auto_approve` (demo data) approves the ones that pass it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils.dateparse import parse_datetime

from ads import index as ad_index
from ads.models import Advertiser, AdvertiserMembership, Campaign, Creative
from ads.services.campaigns import (
    advertiser_create,
    advertiser_member_add,
    campaign_check,
    campaign_create,
    campaign_keywords_parse,
    campaign_update,
)
from ads.services.review import creative_approve, creative_check, creative_create, creative_update
from billing.public import ledger_credit, ledger_reference_exists

ADVERTISER_KEYS = {
    "name",
    "paid_by",
    "website",
    "contact_email",
    "low_balance_threshold_usd",
    "credit_usd",
    "members",
    "campaigns",
}
CAMPAIGN_KEYS = {
    "name",
    "status",
    "starts_at",
    "ends_at",
    "daily_budget_usd",
    "lifetime_budget_usd",
    "pacing",
    "bid_type",
    "max_bid_usd",
    "frequency_cap_hour",
    "frequency_cap_day",
    "language",
    "keywords",
    "context_hints",
    "creatives",
}
CREATIVE_KEYS = {"question", "headline", "text", "landing_url", "display_domain"}


class ImportInvalid(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportReport:
    advertisers_created: int = 0
    advertisers_updated: int = 0
    campaigns_created: int = 0
    campaigns_updated: int = 0
    creatives_created: int = 0
    creatives_updated: int = 0
    creatives_approved: int = 0
    credited_micros: int = 0

    def summary(self) -> str:
        return (
            f"advertisers: {self.advertisers_created} created, {self.advertisers_updated} updated; "
            f"campaigns: {self.campaigns_created} created, {self.campaigns_updated} updated; "
            f"creatives: {self.creatives_created} created, {self.creatives_updated} updated, "
            f"{self.creatives_approved} approved; credited ${self.credited_micros / 1_000_000:.2f}"
        )


def usd_to_micros(value, where: str, errors: list[str], *, required: bool = False) -> int | None:
    if value is None:
        if required:
            errors.append(f"{where}: required.")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors.append(f'{where}: give an amount in dollars as a string, e.g. "12.50".')
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors.append(f"{where}: {value!r} is not an amount.")
        return None
    if not amount.is_finite() or amount < 0:
        errors.append(f"{where}: {value!r} must be zero or more.")
        return None
    micros = amount * 1_000_000
    if micros != micros.to_integral_value():
        errors.append(f"{where}: {value!r} has more than 6 decimal places.")
        return None
    return int(micros)


def _datetime(value, where: str, errors: list[str]) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        errors.append(f"{where}: {value!r} is not an ISO 8601 date-time with a time zone.")
        return None
    return parsed


def _unknown(obj: dict, allowed: set[str], where: str, errors: list[str]) -> None:
    extra = sorted(set(obj) - allowed - {"_comment"})
    if extra:
        errors.append(f"{where}: unknown field(s) {', '.join(extra)}.")


def _validate(data) -> list[dict]:
    """Everything checked and converted; raises ImportInvalid listing every problem."""
    errors: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("advertisers"), list):
        raise ImportInvalid(['The file must be a JSON object with an "advertisers" list.'])
    plan: list[dict] = []
    for a_i, adv in enumerate(data["advertisers"]):
        where = f"advertisers[{a_i}]"
        if not isinstance(adv, dict):
            errors.append(f"{where}: must be an object.")
            continue
        _unknown(adv, ADVERTISER_KEYS, where, errors)
        name = str(adv.get("name") or "").strip()
        if not name:
            errors.append(f"{where}.name: required.")
        members = adv.get("members") or []
        if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("email"), str) for m in members
        ):
            errors.append(f'{where}.members: a list of {{"email": ..., "role": ...}} objects.')
            members = []
        for m in members:
            if m.get("role", "manager") not in AdvertiserMembership.Role.values:
                errors.append(f"{where}.members: unknown role {m.get('role')!r}.")
        item = {
            "name": name,
            "paid_by": str(adv.get("paid_by") or ""),
            "website": str(adv.get("website") or ""),
            "contact_email": str(adv.get("contact_email") or ""),
            "threshold": usd_to_micros(
                adv.get("low_balance_threshold_usd"), f"{where}.low_balance_threshold_usd", errors
            ),
            "credit": usd_to_micros(adv.get("credit_usd"), f"{where}.credit_usd", errors),
            "members": members,
            "campaigns": [],
        }
        campaigns = adv.get("campaigns") or []
        if not isinstance(campaigns, list):
            errors.append(f"{where}.campaigns: must be a list.")
            campaigns = []
        for c_i, camp in enumerate(campaigns):
            cwhere = f"{where}.campaigns[{c_i}]"
            if not isinstance(camp, dict):
                errors.append(f"{cwhere}: must be an object.")
                continue
            _unknown(camp, CAMPAIGN_KEYS, cwhere, errors)
            values = {
                "name": str(camp.get("name") or "").strip(),
                "status": camp.get("status", "draft"),
                "starts_at": _datetime(camp.get("starts_at"), f"{cwhere}.starts_at", errors),
                "ends_at": _datetime(camp.get("ends_at"), f"{cwhere}.ends_at", errors),
                "pacing": camp.get("pacing", "even"),
                "bid_type": camp.get("bid_type", "cpc"),
                "max_bid_micros": usd_to_micros(
                    camp.get("max_bid_usd"), f"{cwhere}.max_bid_usd", errors, required=True
                ),
                "daily_budget_micros": usd_to_micros(
                    camp.get("daily_budget_usd", "10"), f"{cwhere}.daily_budget_usd", errors
                ),
                "lifetime_budget_micros": usd_to_micros(
                    camp.get("lifetime_budget_usd", "100"), f"{cwhere}.lifetime_budget_usd", errors
                ),
                "frequency_cap_hour": camp.get("frequency_cap_hour"),
                "frequency_cap_day": camp.get("frequency_cap_day"),
                "language": str(camp.get("language", "en") or ""),
                "context_hints": str(camp.get("context_hints") or ""),
            }
            for key, message in campaign_check(values=values).items():
                if values.get(key, 0) is not None:  # None: its conversion error is already listed
                    errors.append(f"{cwhere}.{key}: {message}")
            kw_errors: dict = {}
            keywords = campaign_keywords_parse(keywords=camp.get("keywords") or [], errors=kw_errors)
            if kw_errors:
                errors.append(f"{cwhere}.keywords: {kw_errors['keywords']}")
            creatives = camp.get("creatives") or []
            if not isinstance(creatives, list) or not creatives:
                errors.append(f"{cwhere}.creatives: at least one creative.")
                creatives = []
            checked = []
            for k_i, cre in enumerate(creatives):
                kwhere = f"{cwhere}.creatives[{k_i}]"
                if not isinstance(cre, dict):
                    errors.append(f"{kwhere}: must be an object.")
                    continue
                _unknown(cre, CREATIVE_KEYS, kwhere, errors)
                fields = {k: str(cre.get(k) or "").strip() for k in CREATIVE_KEYS}
                fields["display_domain"] = fields["display_domain"].lower()
                for key, messages in creative_check(**fields).items():
                    errors.append(f"{kwhere}.{key}: {' '.join(messages)}")
                checked.append(fields)
            item["campaigns"].append({"values": values, "keywords": keywords, "creatives": checked})
        plan.append(item)
    if errors:
        raise ImportInvalid(errors)
    return plan


def ads_import(*, data, auto_approve: bool = False, reviewer=None, source: str = "import") -> ImportReport:
    """Validate then write `data` (the parsed JSON). Raises ImportInvalid, writing nothing."""
    from accounts.models import User

    plan = _validate(data)
    emails = {m["email"].strip().lower() for item in plan for m in item["members"]}
    users = {u.email.lower(): u for u in User.objects.filter(email__in=emails)} if emails else {}
    missing = sorted(emails - set(users))
    if missing:
        raise ImportInvalid([f"members: no user with the e-mail {e}." for e in missing])
    report = ImportReport()
    with transaction.atomic():
        for item in plan:
            advertiser = Advertiser.objects.filter(name=item["name"]).first()
            if advertiser is None:
                advertiser = advertiser_create(
                    name=item["name"],
                    paid_by=item["paid_by"],
                    website=item["website"],
                    contact_email=item["contact_email"],
                )
                report.advertisers_created += 1
            else:
                advertiser.paid_by = item["paid_by"]
                advertiser.website = item["website"]
                advertiser.contact_email = item["contact_email"] or advertiser.contact_email
                advertiser.save()
                report.advertisers_updated += 1
            if item["threshold"] is not None:
                Advertiser.objects.filter(pk=advertiser.pk).update(low_balance_threshold_micros=item["threshold"])
            if item["credit"]:
                # One credit per advertiser, file source and amount: importing again credits nothing more.
                reference = f"ads-import:{source}:{advertiser.pk}:{item['credit']}"
                if not ledger_reference_exists(reference=reference):
                    ledger_credit(
                        account_id=advertiser.balance_account_id,
                        amount_micros=item["credit"],
                        reference=reference,
                        memo=f"Imported credit ({source})",
                    )
                    report.credited_micros += item["credit"]
            for member in item["members"]:
                advertiser_member_add(
                    advertiser=advertiser,
                    user=users[member["email"].strip().lower()],
                    role=member.get("role", "manager"),
                )
            for camp in item["campaigns"]:
                campaign = Campaign.objects.filter(advertiser=advertiser, name=camp["values"]["name"]).first()
                if campaign is None:
                    campaign = campaign_create(advertiser=advertiser, keywords=camp["keywords"], **camp["values"])
                    report.campaigns_created += 1
                else:
                    campaign = campaign_update(campaign=campaign, keywords=camp["keywords"], **camp["values"])
                    report.campaigns_updated += 1
                for fields in camp["creatives"]:
                    creative = Creative.objects.filter(campaign=campaign, headline=fields["headline"]).first()
                    if creative is None:
                        creative = creative_create(campaign=campaign, **fields)
                        report.creatives_created += 1
                    else:
                        creative = creative_update(creative=creative, **fields)
                        report.creatives_updated += 1
                    if auto_approve and creative.review_status != Creative.ReviewStatus.APPROVED:
                        creative_approve(creative=creative, reviewer=reviewer)
                        report.creatives_approved += 1
    transaction.on_commit(ad_index.invalidate)
    return report


def ads_import_file(*, path: str | Path, auto_approve: bool = False, reviewer=None) -> ImportReport:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ImportInvalid([f"{path}: no such file."]) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportInvalid([f"{path}: not valid JSON ({exc})."]) from exc
    return ads_import(data=data, auto_approve=auto_approve, reviewer=reviewer, source=Path(path).name)
