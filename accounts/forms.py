from django import forms

from accounts.models import User

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
    confirm_email = forms.EmailField(label="Type your email address to confirm")

    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_confirm_email(self) -> str:
        value = self.cleaned_data["confirm_email"].strip().lower()
        if value != self.user.email.lower():
            raise forms.ValidationError("That is not the email address of this account.")
        return value
