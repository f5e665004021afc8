from __future__ import annotations

from django import forms

from assistant.models import Message

TITLE_MAX_LENGTH = 200  # Conversation.title max_length


class RenameForm(forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX_LENGTH,
        strip=True,
        error_messages={"required": "Give the conversation a title.", "max_length": "Keep the title under 200 characters."},
    )


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)


class FeedbackForm(forms.Form):
    value = forms.ChoiceField(choices=Message.Feedback.choices, required=False)
