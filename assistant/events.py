"""The chat protocol's events, all in one place (docs/protocol.md is their mirror): every
type, how each frame is built, the texts they carry, the channel-layer names they
travel under, and the one function that publishes them.

- Client frames (`CLIENT_FRAMES`) arrive on the socket; assistant.consumers dispatches them.
- Server frames (`SERVER_FRAMES`) are built here and nowhere else. A socket's own replies
  (hello, run.started, run.resync, a request's error, pong) go out on that socket; the
  rest are published with `event_send` and reach every socket that follows them.
- Internal events (`INTERNAL_EVENTS`) never reach a browser: `end` closes a run log,
  `conversation.event` carries a frame to a conversation's sockets through the channel
  layer, `run.stop` asks the process that owns a run to stop it, `session.check` tells a
  person's sockets that one or all of their sessions may have ended.

A run log holds the very frames its followers receive (delta, done, error, ad), then
`end`; the log numbers them (`seq`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils.crypto import salted_hmac

from assistant.runlog import run_log

if TYPE_CHECKING:
    from assistant.services import RunSpec

PROTOCOL_VERSION = 1

# --- types ----------------------------------------------------------------------------

MESSAGE_SEND = "message.send"
MESSAGE_REGENERATE = "message.regenerate"
MESSAGE_EDIT = "message.edit"
MESSAGE_CONTINUE = "message.continue"
RUN_SUBSCRIBE = "run.subscribe"
RUN_STOP = "run.stop"  # a client's frame, and the control message of the same name
PING = "ping"
CLIENT_FRAMES = frozenset({
    MESSAGE_SEND, MESSAGE_REGENERATE, MESSAGE_EDIT, MESSAGE_CONTINUE, RUN_SUBSCRIBE, RUN_STOP, PING
})

HELLO = "hello"
RUN_STARTED = "run.started"
DELTA = "delta"
RUN_RESYNC = "run.resync"
DONE = "done"
ERROR = "error"
TITLE = "title"
AD = "ad"
PONG = "pong"
SERVER_FRAMES = frozenset({HELLO, RUN_STARTED, DELTA, RUN_RESYNC, DONE, ERROR, TITLE, AD, PONG})

END = "end"
CONVERSATION_EVENT = "conversation.event"
SESSION_CHECK = "session.check"
INTERNAL_EVENTS = frozenset({END, CONVERSATION_EVENT, RUN_STOP, SESSION_CHECK})

# What a run log holds, in order: deltas, then done or error, then perhaps ad, then end.
RUN_LOG_EVENTS = frozenset({DELTA, DONE, ERROR, AD, END})

# --- texts ----------------------------------------------------------------------------

INTERRUPTED_MESSAGE = "The server writing this answer stopped. The text so far is kept."
NOT_STARTED_MESSAGE = "The answer could not be started."
NOT_SAVED_MESSAGE = "The answer could not be saved."
LOST_TRACK_MESSAGE = "Lost track of this answer; reload to see it."
RUN_NOT_FOUND_MESSAGE = "That answer does not exist."
SESSION_ENDED_MESSAGE = "Your session has ended (signed out, or the password changed). Reload the page to keep chatting."
STOPPED = "stopped"  # the status and the finish reason of an answer stopped by its reader

# --- where events travel --------------------------------------------------------------


def conversation_group(conversation_id: Any) -> str:
    """The channel-layer group of the sockets following a conversation's runs (the
    channel layer's own prefix, REDIS_PREFIX, keeps deployments apart)."""
    return f"lhama.conv.{str(conversation_id).replace('-', '')}"


def user_group(user_id: Any) -> str:
    """The channel-layer group of every chat socket of one signed-in person."""
    return f"lhama.user.{user_id}"


def session_tag(session_key: str) -> str:
    """A session as the channel layer names it: a keyed hash, never the key itself (a
    session key is a credential, and channel-layer messages may cross a network)."""
    return salted_hmac("lhama.events.session", session_key or "", algorithm="sha256").hexdigest()[:32]


def channel_layer_is_shared() -> bool:
    """True when the channel layer reaches other processes (Redis), False for the in-process layer."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return "InMemory" not in backend


# --- server frames --------------------------------------------------------------------


def hello(*, authenticated: bool, display_name: str, max_message_chars: int) -> dict:
    return {
        "type": HELLO,
        "protocol": PROTOCOL_VERSION,
        "user": {"authenticated": authenticated, "display_name": display_name},
        "limits": {"max_message_chars": max_message_chars},
    }


def run_started(*, spec: RunSpec) -> dict:
    frame = {
        "type": RUN_STARTED,
        "client_id": spec.client_id,
        "run_id": spec.run_id,
        "conversation_id": spec.conversation_id,
        "user_message_id": spec.user_message_id,
        "assistant_message_id": spec.assistant_message_id,
        "tier": {"slug": spec.tier.slug, "display_name": spec.tier.display_name, "served_by": spec.tier.served_by},
        "temporary": spec.temporary,
        # A continue: the answer already has this many characters; deltas follow them.
        "continues": len(spec.text_before),
    }
    if spec.versions is not None:
        frame["versions"] = versions(message_id=spec.versions_of, versions=spec.versions)
    return frame


def versions(*, message_id: str, versions) -> dict:
    """A message's place among its versions (assistant.branches.Versions)."""
    return {
        "message_id": message_id,
        "index": versions.index,
        "count": versions.count,
        "previous_id": versions.previous_id,
        "next_id": versions.next_id,
    }


def delta(*, run_id: str, text: str) -> dict:
    return {"type": DELTA, "run_id": run_id, "text": text}


def run_resync(*, run_id: str, conversation_id: str, seq: int, text: str, status: str) -> dict:
    return {"type": RUN_RESYNC, "run_id": run_id, "conversation_id": conversation_id, "seq": seq, "text": text,
            "status": status}


def done(
    *,
    run_id: str,
    message_id: str,
    status: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    seq: int | None = None,
) -> dict:
    """A finished answer (status complete or stopped). `seq` is given only where the
    frame does not come from the run log (which numbers its own)."""
    frame = {
        "type": DONE,
        "run_id": run_id,
        "message_id": message_id,
        "status": status,
        "finish_reason": finish_reason or "stop",
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }
    if seq is not None:
        frame["seq"] = seq
    return frame


def error(
    *,
    code: str,
    message: str,
    run_id: str | None = None,
    client_id: str | None = None,
    retryable: bool = False,
    reset_at=None,
    upgrade_url: str | None = None,
) -> dict:
    """An error about a request (client_id, nothing saved) or one that ends a run (run_id)."""
    return {
        "type": ERROR,
        "code": code,
        "message": message,
        "run_id": run_id,
        "client_id": client_id,
        "retryable": retryable,
        "reset_at": reset_at.isoformat() if hasattr(reset_at, "isoformat") else reset_at,
        "upgrade_url": upgrade_url,
    }


def ad(*, run_id: str, conversation_id: str, ad: dict) -> dict:
    return {"type": AD, "run_id": run_id, "conversation_id": conversation_id, "ad": ad}


def title(*, conversation_id: str, title: str) -> dict:
    return {"type": TITLE, "conversation_id": str(conversation_id), "title": title}


def pong() -> dict:
    return {"type": PONG}


# --- internal events --------------------------------------------------------------------


def end(*, run_id: str) -> dict:
    return {"type": END, "run_id": run_id}


def run_stop_request(*, run_id: str) -> dict:
    return {"type": RUN_STOP, "run_id": run_id}


def session_check(*, user_id: Any, ended_session_key: str = "") -> dict:
    """To a person's sockets: the session `ended_session_key` has ended (logout), its
    sockets close at once; without one, every socket re-checks its session now (a password
    change, an account deletion) and closes if it has ended."""
    return {
        "type": SESSION_CHECK,
        "user_id": str(user_id),
        "ended_session": session_tag(ended_session_key) if ended_session_key else "",
    }


def is_for_client(event: dict) -> bool:
    """Whether a run-log event is forwarded to followers (`end` is not)."""
    return event["type"] in SERVER_FRAMES


def status_of_final(event: dict | None) -> str:
    """A run's status from its final run-log event (None: still running)."""
    if event is None:
        return "running"
    if event["type"] == DONE:
        return event["status"]
    return "interrupted" if event["code"] == "interrupted" else "error"


# --- the one way out --------------------------------------------------------------------


async def event_send(event: dict, *, channel: str | None = None) -> int | None:
    """Publish an event to whoever follows it: a run's event to its run log (returns its
    seq), a title to the sockets of its conversation, a session check to the sockets of
    its person, and, with `channel`, a control message to the process listening on that
    channel."""
    kind = event["type"]
    if channel is not None:
        await get_channel_layer().send(channel, event)
        return None
    if kind in RUN_LOG_EVENTS:
        return await run_log().append(event["run_id"], event)
    if kind == TITLE:
        await get_channel_layer().group_send(
            conversation_group(event["conversation_id"]), {"type": CONVERSATION_EVENT, "event": event}
        )
        return None
    if kind == SESSION_CHECK:
        await get_channel_layer().group_send(user_group(event["user_id"]), event)
        return None
    raise ValueError(f"{kind!r} is not an event that is published")


def event_send_on_commit(event: dict) -> None:
    """`event_send` from sync code, once the current transaction commits (at once outside
    one). A failure is logged, never raised into the caller's request."""
    transaction.on_commit(lambda: async_to_sync(event_send)(event), robust=True)
