"""Writes for conversations, messages and generation runs (all synchronous; async
callers go through database_sync_to_async).

The path from a chat message to the upstream request is `run_begin`: one read of the
conversation's history, then one transaction that reserves the quota and inserts the
messages and the run. Nothing else touches the database until the run ends (`run_end`:
the final message and the quota's settle in one transaction), apart from a snapshot
every few seconds (`run_heartbeat`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from assistant import events, lifecycle, metrics
from assistant.attachments import (
    AttachmentError,
    attachments_attach,
    attachments_by_message,
    attachments_for_send,
    too_large_message,
    turn_content,
)
from assistant.branches import MessageTree, Versions
from assistant.inference import Endpoint, endpoint_for_tier, estimate_messages, estimate_tokens
from assistant.models import Conversation, GenerationRun, Message, ModelTier
from assistant.projects import ProjectError, project_for_new_conversation
from assistant.prompts import PromptTooLong, fit_messages, system_prompt, tokens_for_latest_turn
from assistant.selectors import Owner, conversation_get_for_owner
from billing.public import (
    Entitlements,
    QuotaExceeded,
    Reservation,
    entitlements_for,
    quota_release,
    quota_reserve,
    quota_settle,
)

logger = logging.getLogger(__name__)

CONTEXT_TURNS_FOR_ADS = 3


# SQLite has one write lock, and a writer that finds it taken polls for it, sleeping up
# to 100 ms between tries: under load the lock sat free while fifty chats slept. The
# chat's own write transactions (run_begin, run_heartbeat, run_end) first queue on this
# process-wide lock and take SQLite's the moment it is released; the busy timeout still
# covers every other writer and other processes. Not used on PostgreSQL.
_sqlite_writers = threading.Lock()


@contextmanager
def _write_transaction():
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    with _sqlite_writers, transaction.atomic():
        yield


class RunRejected(Exception):
    """A run that cannot start; carries the protocol's error fields. Nothing was written."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        reset_at: datetime | None = None,
        upgrade_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.reset_at = reset_at
        self.upgrade_url = upgrade_url


@dataclass(frozen=True)
class TierInfo:
    slug: str
    display_name: str
    served_by: str
    endpoint: Endpoint
    context_length: int
    max_output_tokens: int
    sampling: dict


@dataclass
class RunSpec:
    """Everything a run needs, read once in run_begin; the run itself does not query."""

    run_id: str
    conversation_id: str
    user_message_id: str | None
    assistant_message_id: str
    client_id: str
    owner: Owner
    tier: TierInfo
    system: str
    context_length: int
    turns: list[dict]
    messages: list[dict]
    max_tokens: int
    exact_fit_needed: bool
    title_needed: bool
    reservation: Reservation | None = None
    ad_request: Any = None
    # A continue: the answer's text so far (the run's text starts with it; deltas follow it).
    text_before: str = ""
    temporary: bool = False
    # The new message's place among its versions (a regenerated answer, an edited question).
    versions: Versions | None = None
    versions_of: str | None = None  # the id of the message `versions` is about


# --- billing (entitlements, quotas) and ads, through their public modules ------------------


def _upgrade_url() -> str:
    return reverse("billing:pricing")


def _quota_reserve(*, owner: Owner, entitlements: Entitlements, tokens: int) -> Reservation:
    try:
        return quota_reserve(subject=owner.subject, entitlements=entitlements, tokens=tokens)
    except QuotaExceeded as exc:
        raise RunRejected(
            exc.code,
            exc.message,
            retryable=exc.code in ("rate_limited", "concurrent_runs"),
            reset_at=exc.reset_at,
            upgrade_url=exc.upgrade_url or _upgrade_url(),
        ) from exc


def _quota_release_quietly(*, reservation: Reservation | None) -> None:
    if reservation is None:
        return
    try:
        quota_release(reservation=reservation)
    except Exception:  # a failed release must not hide the original error; the reservation has a TTL
        logger.exception("quota_release failed")


def _quota_settle_quietly(*, reservation: Reservation | None, used_tokens: int) -> None:
    if reservation is None:
        return
    try:
        quota_settle(reservation=reservation, used_tokens=used_tokens)
    except Exception:  # the answer is saved either way; the reservation has a TTL
        logger.exception("quota_settle failed")


def _ad_request(*, owner: Owner, user, conversation_id: str, turns: list[dict], entitlements: Entitlements,
                ads_dismissed: bool):
    if not entitlements.ads_enabled or ads_dismissed:
        return None
    from ads.minors import turns_say_minor
    from ads.services.decision import AdRequest  # where used: ads calls back into this module

    user_turns = [t["content"] for t in turns if t["role"] == "user"][-CONTEXT_TURNS_FOR_ADS:]
    # The sensitive gate reads a longer window, every turn whole and on its own: the
    # latest user turns and the latest answer (attachments, once they exist, add theirs).
    gate_user = [t["content"] for t in turns if t["role"] == "user"][-settings.ADS_GATE_WINDOW_TURNS:]
    gate_answer = [t["content"] for t in turns if t["role"] == "assistant"][-1:]
    said_minor = turns_say_minor(gate_user) is not None
    if said_minor and owner.user_id and getattr(user, "is_adult", None):
        from accounts.services import user_age_confirmation_clear

        user_age_confirmation_clear(user_id=owner.user_id)  # once: the answer is then "not said"
    return AdRequest(
        conversation_id=conversation_id,
        user_id=owner.user_id,
        session_key=owner.session_key,
        context_text="\n".join(reversed(user_turns)),  # latest message first
        # Saying in the conversation that one is under 18 outweighs the account's answer.
        is_adult=False if said_minor else (getattr(user, "is_adult", None) if owner.user_id else None),
        ads_enabled=True,
        ads_dismissed=ads_dismissed,
        turns=tuple(reversed(gate_user)) + tuple(gate_answer),  # latest user turn first
    )


# --- run lifecycle -------------------------------------------------------------------


def _history_turns(messages) -> list[dict]:
    turns = []
    attached = attachments_by_message(messages=[m for m in messages if m.role == Message.Role.USER])
    for message in messages:
        if message.role == Message.Role.USER:
            turns.append({"role": "user", "content": turn_content(message.content, attached.get(message.pk, ()))})
        elif message.role == Message.Role.ASSISTANT and message.content and message.status != Message.Status.ERROR:
            turns.append({"role": "assistant", "content": message.content})
    return turns


# Continuing an answer: the partial answer is the last (assistant) message, and the server
# is asked to extend it rather than start a new turn. vLLM's chat endpoint takes these two
# fields (the chat template leaves the final message open, without its end-of-turn
# token); llama.cpp's own server prefills a trailing assistant message by default and
# ignores them. llama-cpp-python's server (the embedded default) ignores them too and
# renders the partial answer as a closed turn: its continuation is a new turn's text.
CONTINUE_REQUEST_FIELDS = {"continue_final_message": True, "add_generation_prompt": False}
CONTINUABLE_STATUSES = (Message.Status.STOPPED, Message.Status.INTERRUPTED)


def message_is_continuable(message: Message) -> bool:
    """An answer stopped by its reader, cut by the output limit or interrupted by a crash,
    with some text to go on from."""
    return (
        message.role == Message.Role.ASSISTANT
        and bool(message.content)
        and (message.status in CONTINUABLE_STATUSES
             or (message.status == Message.Status.COMPLETE and message.finish_reason == "length"))
    )


def _tier_info(tier: ModelTier, *, extra_fields: dict | None = None) -> TierInfo:
    return TierInfo(
        slug=tier.slug,
        display_name=tier.display_name,
        served_by=tier.served_by_label,
        endpoint=endpoint_for_tier(tier),
        context_length=tier.context_length,
        max_output_tokens=tier.max_output_tokens,
        sampling={**(tier.sampling or {}), **(extra_fields or {})},
    )


def run_begin(
    *,
    owner: Owner,
    user,
    action: str,
    client_id: str,
    conversation_id: str | None,
    tier_slug: str,
    content: str = "",
    message_id: str | None = None,
    run_owner: str,
    temporary: bool = False,
    project_id: str | None = None,
    attachment_ids: Sequence[str] = (),
) -> RunSpec:
    """Check, reserve quota, and insert the messages and the run in one transaction.

    action: "send" (a new question at the end of the active branch), "regenerate" (a new
    version of an answer), "edit" (a new version of a question, and its answer),
    "continue" (go on writing a stopped, cut or interrupted answer, in the same message).
    Nothing is ever deleted: versions are siblings in the message tree (assistant.branches)
    and the new message's branch becomes the active one; the prompt is that branch only.
    `temporary` (with "send" and no conversation): a temporary chat (assistant.temporary).
    Raises RunRejected with the protocol's code; nothing is written then.
    """
    if not owner.is_known:
        raise RunRejected("session_required", "Your session has expired. Reload the page to keep chatting.")
    tier = ModelTier.objects.filter(slug=tier_slug, is_active=True).first()
    if tier is None:
        raise RunRejected("not_found", f"There is no model tier called {tier_slug!r}.")
    entitlements = entitlements_for(user=user if user is not None and user.is_authenticated else None)
    if tier.slug not in entitlements.tier_slugs:
        raise RunRejected(
            "tier_locked",
            f"{tier.display_name} is not included in your plan ({entitlements.plan_name}).",
            upgrade_url=_upgrade_url(),
        )

    conversation: Conversation | None = None
    tree = MessageTree([])
    history: list[Message] = []
    parent: Message | None = None  # the new user message's parent (send, edit) or the answer's (regenerate)
    target: Message | None = None
    if conversation_id is not None:
        conversation = conversation_get_for_owner(owner=owner, conversation_id=conversation_id, include_temporary=True)
        if conversation is None:
            raise RunRejected("not_found", "That conversation does not exist.")
        if conversation.runs.filter(status=GenerationRun.Status.RUNNING).exists():
            raise RunRejected(
                "conversation_busy", "An answer is still being written in this conversation.", retryable=True
            )
        tree = MessageTree(list(conversation.messages.exclude(role=Message.Role.SYSTEM)))
    elif action != "send":
        raise RunRejected("not_found", "That conversation does not exist.")
    temporary = conversation.is_temporary if conversation is not None else bool(temporary)
    # A new conversation may be filed in one of the owner's projects (not a temporary one);
    # an existing one keeps its own. The project's instructions are read at every run.
    try:
        project = conversation.project if conversation is not None else (
            None if temporary else project_for_new_conversation(owner=owner, project_id=project_id)
        )
    except ProjectError as exc:
        raise RunRejected(exc.code, exc.message) from exc

    if action == "send":
        history = tree.active_path(conversation.active_leaf_id) if conversation is not None else []
        parent = history[-1] if history else None
    else:
        target = tree.get(message_id)
        wanted_role = Message.Role.USER if action == "edit" else Message.Role.ASSISTANT
        if target is None or target.role != wanted_role:
            raise RunRejected("not_found", "That message does not exist in this conversation.")
        if action == "continue":
            if not message_is_continuable(target):
                raise RunRejected(
                    "not_continuable",
                    "Only an answer that was stopped, cut off at the length limit or interrupted can be continued.",
                )
            history = tree.path_to(target)  # the partial answer is the prompt's last message
            parent = tree.by_id.get(target.parent_id)
        else:
            # A new version beside the target: same parent, the branch above it as history.
            parent = tree.by_id.get(target.parent_id)
            history = tree.path_to(parent)
            if action == "regenerate" and (parent is None or parent.role != Message.Role.USER):
                raise RunRejected("not_found", "That answer has no question to answer again.")

    attached: list = []
    if action in ("send", "edit"):
        try:
            attached = attachments_for_send(owner=owner, ids=attachment_ids)
        except AttachmentError as exc:
            raise RunRejected(exc.code, exc.message) from exc
        if action == "edit" and not attachment_ids:
            attached = list(target.attachments.all())  # an edited question keeps its files (copied below)
    turns = _history_turns(history)
    if action in ("send", "edit"):
        turns.append({"role": "user", "content": turn_content(content, attached)})
    custom = conversation.custom_instructions if conversation else (getattr(user, "custom_instructions", "") or "")
    system = system_prompt(custom_instructions=custom, project_instructions=project.instructions if project else "")
    context_length = min(tier.context_length, entitlements.max_context)
    try:
        messages, max_tokens = fit_messages(
            system=system, turns=turns, context_length=context_length, max_output_tokens=tier.max_output_tokens
        )
    except PromptTooLong as exc:
        if attached:  # say how much of the attached text fits beside the message
            fits = tokens_for_latest_turn(
                system=system, context_length=context_length, max_output_tokens=tier.max_output_tokens
            ) - estimate_tokens(content)
            raise RunRejected("too_large", too_large_message(attachments=attached, fits_tokens=fits)) from exc
        raise RunRejected("too_large", exc.message) from exc
    if action == "continue" and (len(messages) < 3 or messages[-1]["role"] != "assistant"):
        # fit_messages never starts with an answer: the question and its partial answer must both fit.
        raise RunRejected("too_large", "This answer is too long to continue within the model's context window.")
    exact_fit_needed = (
        len(messages) - 1 < len(turns) and tier.tokenizer != ModelTier.Tokenizer.ESTIMATE and action != "continue"
    )

    reservation = None
    try:
        with _write_transaction():
            # The reservation shares this transaction: with database quotas that is one
            # write lock per message instead of two (on SQLite the second BEGIN IMMEDIATE
            # queued behind every other chat's), and a failed insert rolls it back with
            # the rest. With Redis quotas it is one Lua call, released below on failure.
            reservation = _quota_reserve(
                owner=owner, entitlements=entitlements, tokens=estimate_messages(messages) + max_tokens
            )
            now = timezone.now()
            if conversation is None:
                conversation = Conversation.objects.create(
                    user_id=owner.user_id,
                    session_key="" if owner.user_id else owner.session_key,
                    tier=tier,
                    custom_instructions=custom,
                    is_temporary=temporary,
                    project=project,
                )
                title_needed = not temporary
            else:
                title_needed = not conversation.title and not conversation.title_is_custom and not temporary
            user_message = None
            text_before = ""
            if action == "continue":
                assistant_message = target
                question = parent
                text_before = target.content
                Message.objects.filter(pk=target.pk).update(
                    status=Message.Status.STREAMING, finish_reason="", error_code="", updated_at=now
                )
            else:
                if action in ("send", "edit"):
                    user_message = Message(
                        conversation=conversation, role=Message.Role.USER, content=content, tier=tier,
                        parent=parent, created_at=now,
                    )
                question = user_message or parent
                assistant_message = Message(
                    conversation=conversation,
                    role=Message.Role.ASSISTANT,
                    status=Message.Status.STREAMING,
                    tier=tier,
                    parent=question,
                    created_at=now + timedelta(microseconds=1),
                )
                Message.objects.bulk_create([m for m in (user_message, assistant_message) if m is not None])
                if attached:
                    try:  # inside the transaction: an upload another message took rolls this one back
                        attachments_attach(attachments=attached, message=user_message)
                    except AttachmentError as exc:
                        raise RunRejected(exc.code, exc.message) from exc
            # The new answer's branch is the active one from now on.
            Conversation.objects.filter(pk=conversation.pk).update(
                tier=tier, updated_at=now, active_leaf=assistant_message
            )
            run = GenerationRun.objects.create(
                conversation=conversation,
                user_message=question,
                assistant_message=assistant_message,
                tier=tier,
                client_id=client_id[:64],
                owner=run_owner,
                heartbeat_at=now,
                text_before=len(text_before),
            )
    except Exception:
        _quota_release_quietly(reservation=reservation)
        raise

    versions = versions_of = None
    if action in ("regenerate", "edit"):
        new_version = assistant_message if action == "regenerate" else user_message
        tree = MessageTree([*tree.messages, *(m for m in (user_message, assistant_message) if m is not None)])
        versions, versions_of = tree.versions(new_version), str(new_version.pk)

    return RunSpec(
        run_id=str(run.pk),
        conversation_id=str(conversation.pk),
        user_message_id=str(question.pk) if question else None,
        assistant_message_id=str(assistant_message.pk),
        client_id=client_id,
        owner=owner,
        tier=_tier_info(tier, extra_fields=CONTINUE_REQUEST_FIELDS if action == "continue" else None),
        system=system,
        context_length=context_length,
        turns=turns,
        messages=messages,
        max_tokens=max_tokens,
        exact_fit_needed=exact_fit_needed,
        title_needed=title_needed,
        reservation=reservation,
        # A temporary chat shows no ads: the ad request is never made, so no ad event is recorded.
        ad_request=None if temporary else _ad_request(
            owner=owner,
            user=user,
            conversation_id=str(conversation.pk),
            turns=turns,
            entitlements=entitlements,
            ads_dismissed=conversation.ads_dismissed,
        ),
        text_before=text_before,
        temporary=temporary,
        versions=versions,
        versions_of=versions_of,
    )


def run_heartbeat(*, run_id: str, assistant_message_id: str, text: str | None, seq: int) -> None:
    """Crash-safety snapshot: the partial text and the owner's heartbeat."""
    now = timezone.now()
    with _write_transaction():  # one commit (one SQLite write lock) per snapshot
        GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.RUNNING).update(
            heartbeat_at=now, last_seq=seq
        )
        if text is not None:
            Message.objects.filter(pk=assistant_message_id, status=Message.Status.STREAMING).update(
                content=text, updated_at=now
            )


def run_finish(
    *,
    run_id: str,
    assistant_message_id: str,
    conversation_id: str,
    status: str,
    text: str,
    seq: int,
    finish_reason: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    usage_counted: bool = False,
    error_code: str = "",
    error_message: str = "",
    first_token_at: datetime | None = None,
) -> bool:
    """Write the final message once. Returns False when the run was already finished
    (e.g. marked interrupted by the reaper), and then changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        updated = GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.RUNNING).update(
            status=status,
            last_seq=seq,
            heartbeat_at=now,
            finished_at=now,
            first_token_at=first_token_at,
            error_code=error_code,
            error_message=error_message[:500],
        )
        if not updated:
            return False
        # Usage adds up over the answer's runs (0 before its first; one more per continue).
        Message.objects.filter(pk=assistant_message_id).update(
            content=text,
            status=status,
            finish_reason=finish_reason[:32],
            prompt_tokens=F("prompt_tokens") + prompt_tokens,
            completion_tokens=F("completion_tokens") + completion_tokens,
            usage_counted=usage_counted,
            error_code=error_code,
            updated_at=now,
        )
        Conversation.objects.filter(pk=conversation_id).update(updated_at=now)
    return True


def run_end(*, reservation, release: bool, used_tokens: int, **finish: Any) -> bool:
    """`run_finish` and the quota's settle (or release, for a run that produced nothing)
    in one transaction and one thread hop: with database quotas one write lock per
    finished run instead of two. Returns what run_finish returns; the quota is settled
    either way (a run the reaper finished still used its tokens)."""
    with _write_transaction():
        finished = run_finish(**finish)
        if release:
            _quota_release_quietly(reservation=reservation)
        else:
            _quota_settle_quietly(reservation=reservation, used_tokens=used_tokens)
    return finished


def run_abort(*, spec: RunSpec, message: str) -> None:
    """End a run that never started (its log could not be opened) and free its quota."""
    run_finish(
        run_id=spec.run_id,
        assistant_message_id=spec.assistant_message_id,
        conversation_id=spec.conversation_id,
        status=GenerationRun.Status.ERROR,
        text="",
        seq=0,
        finish_reason="error",
        error_code="internal_error",
        error_message=message,
    )
    _quota_release_quietly(reservation=spec.reservation)


def runs_reap_orphans() -> list[str]:
    """Mark runs whose owner died as interrupted, keeping the partial text of their last
    snapshot and settling their quota reservation with it. A run's owner is dead when its
    process heartbeat expired (assistant/lifecycle.py: seconds after a SIGKILL) and the run
    has been silent as long, or when the run itself has been silent ASSISTANT_RUN_STALE_S.
    Runs of live processes are never touched. Returns the ids of the runs marked."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ASSISTANT_RUN_STALE_S)
    silent = now - timedelta(seconds=settings.ASSISTANT_PROCESS_STALE_S)
    candidates = list(GenerationRun.objects.filter(status=GenerationRun.Status.RUNNING, heartbeat_at__lt=silent))
    alive = lifecycle.processes_alive({run.owner.split("|")[0] for run in candidates})
    reaped = []
    for run in candidates:
        if run.heartbeat_at >= cutoff and run.owner.split("|")[0] in alive:
            continue
        with transaction.atomic():
            updated = GenerationRun.objects.filter(
                pk=run.pk, status=GenerationRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
            ).update(
                status=GenerationRun.Status.INTERRUPTED,
                finished_at=timezone.now(),
                error_code="interrupted",
                error_message=events.INTERRUPTED_MESSAGE,
            )
            if not updated:
                continue
            Message.objects.filter(pk=run.assistant_message_id).update(
                status=Message.Status.INTERRUPTED, error_code="interrupted", updated_at=timezone.now()
            )
        text = Message.objects.filter(pk=run.assistant_message_id).values_list("content", flat=True).first() or ""
        _quota_settle_quietly(
            reservation=lifecycle.reservation_recall(run_id=str(run.pk)), used_tokens=estimate_tokens(text)
        )
        metrics.run_outcomes.labels(status="interrupted").inc()
        reaped.append(str(run.pk))
    return reaped


# --- conversations (HTTP side also uses these) --------------------------------------------


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.title_is_custom = bool(conversation.title)
    conversation.save(update_fields=["title", "title_is_custom", "updated_at"])
    return conversation


def conversation_title_set_auto(*, conversation_id: str, title: str) -> bool:
    """Set a generated title unless someone already titled the conversation (idempotent)."""
    title = title.strip()[:200]
    if not title:
        return False
    return bool(
        Conversation.objects.filter(pk=conversation_id, title="", title_is_custom=False).update(title=title)
    )


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversation_share(*, conversation: Conversation) -> str:
    if conversation.is_temporary:
        raise ValueError("A temporary chat cannot be shared.")
    if not conversation.share_token:
        conversation.share_token = secrets.token_urlsafe(24)
        conversation.save(update_fields=["share_token", "updated_at"])
    return conversation.share_token


def conversation_unshare(*, conversation: Conversation) -> None:
    conversation.share_token = None
    conversation.save(update_fields=["share_token", "updated_at"])


def conversation_ads_dismiss(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(ads_dismissed=True)
    conversation.ads_dismissed = True


def message_feedback_set(*, message: Message, feedback: str, comment: str = "") -> Message:
    if message.role != Message.Role.ASSISTANT:
        raise ValueError("Only answers take feedback.")
    if feedback not in Message.Feedback.values:
        raise ValueError(f"Unknown feedback {feedback!r}.")
    message.feedback = feedback
    message.feedback_comment = comment.strip()[:500]
    message.save(update_fields=["feedback", "feedback_comment", "updated_at"])
    return message


def conversations_claim_for_user(*, session_key: str, user) -> int:
    """Move a guest session's conversations to the user who just signed up or logged in
    (not a temporary chat: it stays the guest socket's, which deletes it when it closes)."""
    if not session_key or user is None or not user.pk:
        return 0
    return Conversation.objects.filter(user__isnull=True, session_key=session_key, is_temporary=False).update(
        user=user, session_key="", updated_at=F("updated_at")
    )


def conversation_ads_dismissed_set(*, conversation_id: str | uuid.UUID, user_id: int | None, session_key: str) -> bool:
    """No more ads in this conversation (its reader dismissed an ad card; the ads app calls
    this). Only the conversation's owner, the user or else the guest session, may ask;
    True when the conversation was theirs."""
    conversation = conversation_get_for_owner(
        owner=Owner(user_id=user_id, session_key=session_key), conversation_id=conversation_id
    )
    if conversation is None:
        return False
    conversation_ads_dismiss(conversation=conversation)
    return True
