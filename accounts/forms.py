import datetime as dt

from django import forms
from django.utils import timezone

from accounts.models import User

# An account without a usable password proves itself by a login this recent instead.
FRESH_LOGIN = dt.timedelta(minutes=10)

AGE_CHOICES = [
    ("", "I'd rather not say"),
    ("yes", "I am 18 or older"),
    ("no", "I am under 18"),
]


class ProfileForm(forms.ModelForm):
    age = forms.ChoiceField(
        choices=AGE_CHOICES,
        required=False,
        label="Age",
        help_text="Sponsored suggestions are never shown to anyone who says they are under 18.",
    )

    class Meta:
        model = User
        fields = ["display_name", "custom_instructions"]
        widgets = {"custom_instructions": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "custom_instructions": "What should Lhama know about you, or how should it answer? Used in new conversations.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        value = self.instance.is_adult
        self.fields["age"].initial = "" if value is None else ("yes" if value else "no")

    def cleaned_is_adult(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data.get("age") or "")


class DeleteAccountForm(forms.Form):
    """Deleting needs the account's e-mail typed and its password (a session left open on
    a shared computer is not enough); an account without a usable password needs a login
    within FRESH_LOGIN instead."""

    confirm_email = forms.EmailField(label="Type your email address to confirm")
    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        if not user.has_usable_password():
            del self.fields["password"]

    def clean_confirm_email(self) -> str:
        value = self.cleaned_data["confirm_email"].strip().lower()
        if value != self.user.email.lower():
            raise forms.ValidationError("That is not the email address of this account.")
        return value

    def clean_password(self) -> str:
        if not self.user.check_password(self.cleaned_data.get("password") or ""):
            raise forms.ValidationError("That is not the password of this account.")
        return ""

    def clean(self):
        cleaned = super().clean()
        if not self.user.has_usable_password():
            last_login = self.user.last_login
            if last_login is None or timezone.now() - last_login > FRESH_LOGIN:
                minutes = int(FRESH_LOGIN.total_seconds() // 60)
                raise forms.ValidationError(
                    f"Log in again to delete this account (it needs a login within the last {minutes} minutes)."
                )
        return cleaned
