from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from assistant.api.keys import MAX_NAME_LENGTH

EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME_LENGTH, help_text="What the key is for, e.g. 'laptop' or 'CI'.")
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    tiers = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Models",
        help_text="Leave all unticked to allow every model your plan includes (now and later).",
    )

    def __init__(self, *args, tier_choices: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tiers"].choices = tier_choices

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None
