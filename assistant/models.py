"""Conversations, messages, model tiers and generation runs."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

# A tier names the environment variable that holds its server's API key. Only these
# prefixes may be named, so that editing a tier in the admin can never point it at
# another secret of the process (STRIPE_SECRET_KEY, SECRET_KEY, DATABASE_URL, ...) and
# send it to a server of the editor's choosing.
API_KEY_ENV_PREFIXES = ("LHAMA_TIER_", "VLLM_", "INFERENCE_")
_API_KEY_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def api_key_env_allowed(name: str) -> bool:
    """Whether a tier may read its API key from the environment variable `name`."""
    return bool(_API_KEY_ENV_NAME.fullmatch(name)) and name.startswith(API_KEY_ENV_PREFIXES)


class ModelTier(models.Model):
    """One model a person can chat with; which server answers is data, not code."""

    class Tokenizer(models.TextChoices):
        ESTIMATE = "estimate", "Estimate from the text length"
        LLAMA_CPP = "llama.cpp", "llama.cpp server (/extras/tokenize)"
        VLLM = "vllm", "vLLM server (/tokenize)"

    slug = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True)
    served_model_name = models.CharField(
        max_length=200, help_text="The `model` sent to the server (vLLM --served-model-name or llama.cpp alias)."
    )
    served_by = models.CharField(
        max_length=200,
        blank=True,
        help_text="What really answers, shown in the chat (e.g. the embedded model's name). Empty: the display name.",
    )
    base_url = models.CharField(max_length=500, help_text="OpenAI-compatible base URL, e.g. http://gpu:8000/v1")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the bearer token (never the key)."
    )
    tokenizer = models.CharField(
        max_length=16,
        choices=Tokenizer.choices,
        default=Tokenizer.ESTIMATE,
        help_text="How prompt tokens are counted when fitting history and when the server sends no usage.",
    )
    context_length = models.PositiveIntegerField(default=4096)
    max_output_tokens = models.PositiveIntegerField(default=512)
    sampling = models.JSONField(
        default=dict,
        blank=True,
        help_text='Extra request fields, e.g. {"temperature": 0.6, "top_p": 0.9, "repeat_penalty": 1.1}.',
    )
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "slug"]

    def __str__(self) -> str:
        return self.display_name

    def clean(self) -> None:
        super().clean()
        if self.api_key_env and not api_key_env_allowed(self.api_key_env):
            raise ValidationError({
                "api_key_env": (
                    "Name an environment variable of the inference servers: upper case, starting with "
                    + ", ".join(API_KEY_ENV_PREFIXES)
                    + " (e.g. VLLM_API_KEY)."
                )
            })

    @property
    def served_by_label(self) -> str:
        return self.served_by or self.display_name


class Project(models.Model):
    """A folder of a signed-in person's conversations, with its own instructions (added
    to the system prompt of each of them) and a default model tier (assistant.projects)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    instructions = models.TextField(blank=True, max_length=4000)
    tier = models.ForeignKey(
        ModelTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The model a new conversation in this project starts with.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "created_at"]
        indexes = [models.Index(fields=["user", "name"], name="project_user_name")]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    # Guests own conversations through their session; moved to the user on sign-up/log-in.
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    title = models.CharField(max_length=200, blank=True)
    title_is_custom = models.BooleanField(default=False, help_text="Renamed by the person: never auto-titled again.")
    tier = models.ForeignKey(ModelTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Custom instructions from the profile, captured when the conversation starts.
    custom_instructions = models.TextField(blank=True)
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    ads_dismissed = models.BooleanField(default=False)
    # The branch shown and sent to the model: the last message of the active path of the
    # message tree (assistant.branches). Null: the newest message's path.
    active_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A temporary chat (assistant.temporary): never listed, searched, exported, shared or
    # titled, no ads; deleted when the socket that started it closes (or by the sweep).
    is_temporary = models.BooleanField(default=False, db_index=True)
    # The project (folder) it is filed in; deleting a project keeps or deletes its
    # conversations as its owner chooses (assistant.projects.project_delete).
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["user", "-updated_at"], name="conv_user_updated"),
            models.Index(fields=["session_key", "-updated_at"], name="conv_session_updated"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(session_key=""), name="conversation_has_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        SYSTEM = "system", "System"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STREAMING = "streaming", "Streaming"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"
        INTERRUPTED = "interrupted", "Interrupted"

    class Feedback(models.TextChoices):
        NONE = "", "None"
        UP = "up", "Thumbs up"
        DOWN = "down", "Thumbs down"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    tier = models.ForeignKey(ModelTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The message tree (assistant.branches): an answer's parent is the question it answers,
    # a question's the answer before it (null for a first question). Messages with the same
    # parent are versions of one another (a regenerated answer, an edited question).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    finish_reason = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_counted = models.BooleanField(
        default=False, help_text="Usage was counted by Lhama because the server sent no usage chunk."
    )
    feedback = models.CharField(max_length=4, choices=Feedback.choices, blank=True, default="")
    feedback_comment = models.CharField(max_length=500, blank=True)
    # Set explicitly (not auto_now_add) so a question always sorts before its answer.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="msg_conv_created")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class GenerationRun(models.Model):
    """One generation: owned by the web process that accepted it, logged to a run log."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"
        INTERRUPTED = "interrupted", "Interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="runs")
    user_message = models.ForeignKey(Message, null=True, on_delete=models.CASCADE, related_name="+")
    # An answer has one run, and one more per "continue" (each appends to the same message).
    assistant_message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="runs")
    text_before = models.PositiveIntegerField(
        default=0, help_text="Characters the answer had before this run (a continue): its deltas follow them."
    )
    tier = models.ForeignKey(ModelTier, null=True, on_delete=models.SET_NULL, related_name="runs")
    client_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    owner = models.CharField(max_length=255, help_text="The web process running it (host:pid:nonce|control channel).")
    heartbeat_at = models.DateTimeField()
    last_seq = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class Attachment(models.Model):
    """A file's text, extracted on upload (assistant.attachments) and sent with one
    message: it is part of that turn in the prompt, in the ad decision and in exports.
    An upload belongs to its uploader until the message that uses it is saved."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        MARKDOWN = "markdown", "Markdown"
        CODE = "code", "Code"
        CSV = "csv", "CSV"
        PDF = "pdf", "PDF"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    size = models.PositiveIntegerField(help_text="The uploaded file's size in bytes.")
    pages = models.PositiveIntegerField(null=True, blank=True, help_text="A PDF's page count.")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(session_key=""), name="attachment_has_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.name
