from __future__ import annotations

from django import forms

from assistant.models import Message, ModelTier

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


class ProjectForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        strip=True,
        error_messages={"required": "Give the project a name.", "max_length": "Keep the name under 100 characters."},
    )
    instructions = forms.CharField(
        max_length=4000,
        required=False,
        strip=True,
        widget=forms.Textarea,
        error_messages={"max_length": "Keep the instructions under 4,000 characters."},
    )
    tier = forms.ModelChoiceField(
        queryset=ModelTier.objects.filter(is_active=True),
        to_field_name="slug",
        required=False,
        empty_label="The model I last used",
        error_messages={"invalid_choice": "Choose one of the models."},
    )


class ConversationMoveForm(forms.Form):
    # Empty: out of any project.
    project = forms.UUIDField(required=False)


class ProjectDeleteForm(forms.Form):
    conversations = forms.ChoiceField(
        choices=[("keep", "Keep its conversations"), ("delete", "Delete its conversations too")],
        error_messages={"required": "Say whether its conversations go too.", "invalid_choice": "Keep or delete?"},
    )


class AttachmentUploadForm(forms.Form):
    file = forms.FileField(error_messages={"required": "Choose a file to attach.", "empty": "That file is empty."})
