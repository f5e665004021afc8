"""Forms of the advertiser dashboard. Money is typed in dollars and cleaned into micros;
keywords use the search-advertising notation (broad, "phrase", [exact])."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from ads.dashboard.money import dollars_to_micros, micros_to_dollars
from ads.matching import Keyword, KeywordError, parse_keywords
from ads.models import Advertiser, AdvertiserMembership, Campaign, Creative
from ads.services.review import creative_check

# Billing's limits on one top-up (Stripe Checkout in payment mode).
from billing.public import MAX_TOPUP_MICROS, MIN_TOPUP_MICROS

LANGUAGE_CHOICES = [
    ("", "Any language"),
    ("en", "English"),
    ("fr", "French"),
    ("de", "German"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("pt", "Portuguese"),
    ("nl", "Dutch"),
]
MAX_KEYWORDS = 200


def keywords_clean(raw: str, *, negative: bool) -> list[Keyword]:
    """One keyword per line (or comma-separated), in the ad engine's notation: broad,
    "phrase", [exact]; in the positive list a leading - also makes a negative keyword."""
    if negative:
        raw = "\n".join("-" + line.strip().removeprefix("-") for line in re.split(r"[\n,]", raw or "") if line.strip())
    try:
        keywords = parse_keywords(raw or "")
    except KeywordError as exc:
        raise ValidationError(str(exc)) from exc
    if len(keywords) > MAX_KEYWORDS:
        raise ValidationError(f"At most {MAX_KEYWORDS} keywords per campaign ({len(keywords)} given).")
    return keywords


def keywords_initial(campaign: Campaign) -> tuple[str, str]:
    """The campaign's keywords as the two text areas show them (positive, negative)."""
    positive, negative = [], []
    for k in campaign.keywords.all():
        line = Keyword(k.text, k.match_type, False).as_line()
        (negative if k.is_negative else positive).append(line)
    return "\n".join(positive), "\n".join(negative)


class DollarField(forms.DecimalField):
    """A dollar amount typed by a person, cleaned into integer micros."""

    def __init__(
        self, *, decimal_places: int = 2, min_dollars: str | None = "0", max_dollars: str = "1000000", **kwargs
    ):
        kwargs.setdefault("max_digits", 13)
        super().__init__(
            decimal_places=decimal_places,
            min_value=Decimal(min_dollars) if min_dollars is not None else None,
            max_value=Decimal(max_dollars),
            **kwargs,
        )
        self.widget.attrs.setdefault("inputmode", "decimal")

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().removeprefix("$").replace(",", "").strip()
        return super().to_python(value)

    def clean(self, value) -> int | None:  # type: ignore[override]
        amount = super().clean(value)
        return None if amount is None else dollars_to_micros(amount)

    def prepare_value(self, value):
        # Initial values come from the model in micros; bound data stays as typed.
        if isinstance(value, int):
            return (
                micros_to_dollars(value).normalize()
                if value % 10_000
                else micros_to_dollars(value).quantize(Decimal("0.01"))
            )
        return value


def https_url_validate(value: str) -> None:
    """Landing pages are https only: javascript:, data:, http: and the like are refused."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() != "https":
        raise ValidationError(
            "The landing URL must start with https:// (other schemes such as http:, javascript: or data: are refused)."
        )
    if not parts.hostname or "." not in parts.hostname:
        raise ValidationError("The landing URL needs a public host name, like https://example.com/offer.")
    if parts.username or parts.password:
        raise ValidationError("The landing URL must not contain a user name or password.")


# --- organisation ------------------------------------------------------------------------


class AdvertiserForm(forms.ModelForm):
    class Meta:
        model = Advertiser
        fields = ["name", "paid_by", "website", "contact_email"]
        labels = {"name": "Organisation name", "paid_by": "Paid for by", "contact_email": "Billing contact e-mail"}
        widgets = {"name": forms.TextInput(attrs={"autofocus": True})}

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Give your organisation a name.")
        return name


class MemberInviteForm(forms.Form):
    """Who to invite. Whether an account uses the e-mail is never looked up: the answer is
    the same either way, and the person becomes a member only by accepting the invitation
    while signed in with that e-mail (ads.services.campaigns.advertiser_invitation_send)."""

    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(choices=AdvertiserMembership.Role.choices, initial=AdvertiserMembership.Role.MANAGER)

    def __init__(self, *args, advertiser: Advertiser, **kwargs):
        super().__init__(*args, **kwargs)
        self.advertiser = advertiser

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        # The members are on the page already: saying so reveals nothing new.
        if AdvertiserMembership.objects.filter(advertiser=self.advertiser, user__email__iexact=email).exists():
            raise ValidationError("This person is already a member of your organisation.")
        return email


class TopUpForm(forms.Form):
    amount = DollarField(
        label="Amount (USD)",
        decimal_places=2,
        min_dollars=str(MIN_TOPUP_MICROS // 1_000_000),
        max_dollars=str(MAX_TOPUP_MICROS // 1_000_000),
        initial=Decimal("50.00"),
        help_text=f"Between ${MIN_TOPUP_MICROS // 1_000_000} and ${MAX_TOPUP_MICROS // 1_000_000:,}; paid by card on Stripe.",
    )


# --- campaigns --------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    daily_budget = DollarField(label="Daily budget", min_dollars="0.01", help_text="Most spent per day (UTC).")
    lifetime_budget = DollarField(
        label="Lifetime budget", min_dollars="0.01", help_text="Most spent over the whole campaign."
    )
    max_bid = DollarField(
        label="Max bid",
        decimal_places=4,
        min_dollars="0.0001",
        max_dollars="1000",
        help_text="CPC: most you pay per click. CPM: most you pay per thousand impressions. You pay the second price, often less.",
    )
    keywords = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": 'gpu rental\n"fine-tune llama"\n[h100 price]'}),
        help_text='One per line. broad match: gpu rental · phrase: "gpu rental" · exact: [gpu rental].',
    )
    negative_keywords = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "free\ncrypto mining"}),
        help_text="Never show this campaign when the conversation matches one of these (same notation).",
    )
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, required=False, initial="en")

    class Meta:
        model = Campaign
        fields = [
            "name",
            "starts_at",
            "ends_at",
            "pacing",
            "bid_type",
            "frequency_cap_hour",
            "frequency_cap_day",
            "language",
            "context_hints",
        ]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "context_hints": forms.Textarea(
                attrs={
                    "rows": 4,
                    "placeholder": "People training or fine-tuning open models who need GPUs for a few hours.",
                }
            ),
            "pacing": forms.RadioSelect,
            "bid_type": forms.RadioSelect,
        }
        labels = {
            "starts_at": "Starts (UTC)",
            "ends_at": "Ends (UTC)",
            "frequency_cap_hour": "Max per viewer per hour",
            "frequency_cap_day": "Max per viewer per day",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        campaign = self.instance
        if campaign.pk:
            self.initial.setdefault("daily_budget", campaign.daily_budget_micros)
            self.initial.setdefault("lifetime_budget", campaign.lifetime_budget_micros)
            self.initial.setdefault("max_bid", campaign.max_bid_micros)
            positive, negative = keywords_initial(campaign)
            self.initial.setdefault("keywords", positive)
            self.initial.setdefault("negative_keywords", negative)
        else:
            defaults = Campaign()
            self.initial.setdefault("daily_budget", defaults.daily_budget_micros)
            self.initial.setdefault("lifetime_budget", defaults.lifetime_budget_micros)
            self.initial.setdefault("max_bid", defaults.max_bid_micros)
        for name in ("frequency_cap_hour", "frequency_cap_day"):
            self.fields[name].widget.attrs.update({"min": 1, "placeholder": "No cap"})
        self.fields["context_hints"].widget.attrs["data-counter"] = ""

    def clean_keywords(self) -> list[Keyword]:
        return keywords_clean(self.cleaned_data.get("keywords") or "", negative=False)

    def clean_negative_keywords(self) -> list[Keyword]:
        return keywords_clean(self.cleaned_data.get("negative_keywords") or "", negative=True)

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Give the campaign a name.")
        return name

    def clean(self):
        cleaned = super().clean()
        # Budgets, bid (reserve price), dates and caps are checked by ads.services.campaigns
        # (CampaignInvalid, mapped onto these fields by the view); these are the form's own.
        for cap in ("frequency_cap_hour", "frequency_cap_day"):
            if cleaned.get(cap) == 0:
                self.add_error(cap, "Leave it empty for no cap; 0 would never show the ad.")
        hour, day = cleaned.get("frequency_cap_hour"), cleaned.get("frequency_cap_day")
        if hour and day and hour > day:
            self.add_error("frequency_cap_hour", "The hourly cap cannot be more than the daily cap.")
        positive = [k for k in cleaned.get("keywords") or [] if not k.is_negative]
        if not (positive or (cleaned.get("context_hints") or "").strip()) and not self.errors:
            raise ValidationError(
                "Add at least one keyword or a context hint: ads are matched to conversations by them."
            )
        return cleaned

    # ads.services.campaigns.CampaignInvalid names model fields; these are the form's names for them.
    SERVICE_FIELDS = {
        "daily_budget_micros": "daily_budget",
        "lifetime_budget_micros": "lifetime_budget",
        "max_bid_micros": "max_bid",
    }

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            field = self.SERVICE_FIELDS.get(name, name)
            self.add_error(field if field in self.fields else None, message)

    def all_keywords(self) -> list[Keyword]:
        return [*self.cleaned_data["keywords"], *self.cleaned_data["negative_keywords"]]

    def campaign_fields(self) -> dict:
        """The cleaned values as keyword arguments for ads.services.campaigns.campaign_create/update."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "starts_at": data.get("starts_at"),
            "ends_at": data.get("ends_at"),
            "daily_budget_micros": data["daily_budget"],
            "lifetime_budget_micros": data["lifetime_budget"],
            "pacing": data["pacing"],
            "bid_type": data["bid_type"],
            "max_bid_micros": data["max_bid"],
            "frequency_cap_hour": data.get("frequency_cap_hour"),
            "frequency_cap_day": data.get("frequency_cap_day"),
            "language": data.get("language") or "",
            "context_hints": (data.get("context_hints") or "").strip(),
        }


class CreativeForm(forms.ModelForm):
    """The fields of a sponsored suggestion. Cleaning runs the ad engine's automatic review
    (ads.services.review.creative_check), so the advertiser sees every problem before submitting."""

    display_domain = forms.CharField(
        max_length=100,
        required=False,
        help_text="Shown on the card. Empty: the landing URL's host. Must be that host or its parent domain.",
    )

    class Meta:
        model = Creative
        fields = ["headline", "text", "question", "landing_url", "display_domain"]
        widgets = {
            "text": forms.Textarea(attrs={"rows": 3}),
            "landing_url": forms.URLInput(attrs={"placeholder": "https://example.com/offer"}),
        }
        labels = {"text": "Description", "question": "Sponsored question", "landing_url": "Landing URL"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only https: Django's URLField alone would also accept http: and ftp:.
        landing = self.fields["landing_url"]
        landing.validators = [https_url_validate]
        landing.assume_scheme = "https"
        for name in ("headline", "text", "question", "landing_url", "display_domain"):
            self.fields[name].widget.attrs["data-preview"] = name
        for name in ("headline", "text", "question"):
            self.fields[name].widget.attrs["data-counter"] = ""
            self.fields[name].widget.attrs["maxlength"] = Creative._meta.get_field(name).max_length

    def clean_display_domain(self) -> str:
        return (self.cleaned_data.get("display_domain") or "").strip().lower().removeprefix("www.")

    def clean(self):
        cleaned = super().clean()
        for name in ("headline", "text", "question"):
            if name in cleaned:
                cleaned[name] = " ".join((cleaned[name] or "").split())
        url = cleaned.get("landing_url")
        if url and not cleaned.get("display_domain"):
            cleaned["display_domain"] = (urlsplit(url).hostname or "").lower().removeprefix("www.")
        if not self.errors:
            self.add_service_errors(creative_check(**self.creative_fields()))
        return cleaned

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)

    def creative_fields(self) -> dict:
        data = self.cleaned_data
        return {
            name: data.get(name) or "" for name in ("headline", "text", "question", "landing_url", "display_domain")
        }


# --- reports ------------------------------------------------------------------------------


class DateRangeForm(forms.Form):
    """A report's dates: both, or neither (the last DEFAULT_DAYS days, to `today`); start
    <= end; at most MAX_DAYS days, both ends counted. A report builds one row per day of
    the range, so no range is left unbounded (`?end=9999-12-31` alone is an error)."""

    MAX_DAYS = 366
    DEFAULT_DAYS = 30

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, today: dt.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today or timezone.now().date()

    def default_range(self) -> tuple[dt.date, dt.date]:
        return self.today - dt.timedelta(days=self.DEFAULT_DAYS - 1), self.today

    def clean(self):
        cleaned = super().clean()
        if self.errors:  # a date that is not a date: its field says so
            return cleaned
        start, end = cleaned.get("start"), cleaned.get("end")
        if start is None and end is None:
            start, end = self.default_range()
        elif start is None or end is None:
            raise ValidationError(
                f"Give both a start and an end date (or neither, for the last {self.DEFAULT_DAYS} days)."
            )
        if end < start:
            raise ValidationError("The end date must not be before the start date.")
        if (end - start).days + 1 > self.MAX_DAYS:
            raise ValidationError(f"Choose a range of at most {self.MAX_DAYS} days.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned


class ConversationPreviewForm(forms.Form):
    text = forms.CharField(
        label="Conversation",
        max_length=4000,
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "placeholder": "I want to fine-tune Llama 3.1 8B on my own data. Where can I rent a GPU for a few hours?",
            }
        ),
        help_text="Type what a user might say. Only your own organisation's approved, active campaigns take part.",
    )
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES[1:], initial="en")
