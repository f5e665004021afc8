"""`/ws/chat/`: protocol v1 (docs/protocol.md). Transport only: identify the person,
validate frames and control their flood, hand runs to assistant.runs (launch, stop) and
forward what assistant.runfollow reads of them to the socket.

A socket follows runs; it never owns them. Closing it cancels the followers, not the
runs. The Origin header is checked in config/asgi.py before the socket opens.

The session the socket was opened with is re-checked on every frame (at most every
SESSION_RECHECK_S seconds: accounts.selectors.session_is_current), and at once when a
`session.check` arrives on the person's channel-layer group (logout, password change,
account deletion: assistant/signals.py). A session that has ended closes the socket with
4001; runs it started go on and are saved, and nothing new starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.selectors import session_is_current
from assistant import events, lifecycle, runs, selectors, services
from assistant.runfollow import run_follow
from assistant.signals import GUEST_KEY
from assistant.temporary import temporary_conversations_close
from config.clientip import client_ip_for_scope

logger = logging.getLogger(__name__)

MAX_FRAME_CHARS = 64 * 1024
MAX_CLIENT_ID_CHARS = 64
# Flood control: a token bucket per socket (frames per second, burst), a warning frame
# each time it runs dry, and a close with 4400 after MAX_FLOOD_WARNINGS warnings.
FRAME_RATE = 10.0
FRAME_BURST = 30.0
MAX_FLOOD_WARNINGS = 3
MAX_OVERSIZED = 3
MAX_FOLLOWED_RUNS = 20
# A frame names uploads by id (assistant.attachments; the files go over HTTP, never here).
MAX_ATTACHMENTS_PER_FRAME = 20
# No frame of the protocol nests deeper than 2; anything past this is refused before
# json.loads, whose recursion a few thousand brackets would exhaust.
MAX_JSON_DEPTH = 8

# The session is re-read at most this often on frames (logout and the like also push).
SESSION_RECHECK_S = 5.0

CLOSE_SESSION_ENDED = 4001
CLOSE_PROTOCOL_ABUSE = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_LARGE = 4413
CLOSE_DRAINING = lifecycle.CLOSE_DRAINING  # 4503: this process is shutting down; reconnect now


def _str_field(frame: dict, name: str, *, max_len: int) -> str:
    value = frame.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _InvalidFrame(f"`{name}` must be a non-empty string of at most {max_len} characters.")
    return value


class _InvalidFrame(Exception):
    pass


def _text_before(run) -> str:
    """The text a continue run goes on from (its answer's first `text_before` characters)."""
    return run.assistant_message.content[: run.text_before] if run.text_before else ""


# A JSON string (escapes included; an unterminated one runs to the end), or one bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]')


def json_too_deep(text: str, *, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` opens arrays or objects deeper than `limit`, counting the brackets
    outside strings without parsing (malformed text is json.loads's to refuse)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif piece in ("]", "}"):
            depth = max(0, depth - 1)
    return False


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        if lifecycle.draining():  # refused at the handshake (403): the proxy tries another process
            await self.close()
            return
        self.user = self.scope.get("user")
        self.session = self.scope.get("session")
        session_key = getattr(self.session, "session_key", None) if self.session is not None else None
        self.owner = selectors.owner_for(
            user=self.user, session_key=session_key, client_address=client_ip_for_scope(self.scope)
        )
        self.session_key = session_key or ""
        self.session_tag = events.session_tag(self.session_key)
        self.session_checked_at = time.monotonic()  # the handshake has just read it
        self.session_ended = False
        self.followers: dict[str, asyncio.Task] = {}
        self.groups_joined: set[str] = set()
        self.temporary_conversations: set[str] = set()  # deleted when this socket closes
        self.bucket = FRAME_BURST
        self.bucket_at = time.monotonic()
        self.flood_warnings = 0
        self.last_flood_warning = 0.0
        self.oversized = 0
        await self.accept()
        lifecycle.socket_opened(self)
        authenticated = bool(self.owner.user_id)
        if authenticated:
            await self._join_group(events.user_group(self.owner.user_id))
        display_name = self.user.get_short_name() if authenticated else "Guest"
        await self.send_json(events.hello(
            authenticated=authenticated,
            display_name=display_name,
            max_message_chars=settings.ASSISTANT_MAX_MESSAGE_CHARS,
        ))
        if not self.owner.is_known:
            await self.send_json(events.error(
                code="session_required",
                message="Your session has expired or cookies are blocked. Reload the page to chat.",
            ))
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not authenticated and self.session.get(GUEST_KEY) != session_key:
            # Remember the guest's original key: login rotates it, and the conversations follow this one.
            self.session[GUEST_KEY] = session_key
            await database_sync_to_async(self.session.save)()

    async def disconnect(self, code) -> None:
        lifecycle.socket_closed(self)
        for task in getattr(self, "followers", {}).values():
            task.cancel()
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "temporary_conversations", None):
            await temporary_conversations_close(owner=self.owner, conversation_ids=self.temporary_conversations)

    # --- framing, flood control ------------------------------------------------------

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.bucket = min(FRAME_BURST, self.bucket + (now - self.bucket_at) * FRAME_RATE)
        self.bucket_at = now
        if self.bucket >= 1:
            self.bucket -= 1
            return True
        return False

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.session_ended:
            return
        if not await self._session_current():
            await self._session_end()
            return
        if not self._take_token():
            now = time.monotonic()
            if now - self.last_flood_warning >= 1.0:
                self.last_flood_warning = now
                self.flood_warnings += 1
                if self.flood_warnings > MAX_FLOOD_WARNINGS:
                    await self.close(code=CLOSE_PROTOCOL_ABUSE)
                    return
                await self.send_json(events.error(
                    code="rate_limited",
                    message="Too many frames: slow down. Frames sent too fast are dropped.",
                    retryable=True,
                ))
            return
        if bytes_data is not None:
            await self.send_json(events.error(code="invalid_frame", message="Send JSON text frames, not binary ones."))
            return
        if text_data is None:
            return
        if len(text_data) > MAX_FRAME_CHARS:
            self.oversized += 1
            if self.oversized >= MAX_OVERSIZED:
                await self.close(code=CLOSE_TOO_LARGE)
                return
            await self.send_json(events.error(
                code="too_large", message=f"Frames may be at most {MAX_FRAME_CHARS} characters."
            ))
            return
        if json_too_deep(text_data):
            await self.send_json(events.error(
                code="bad_json", message=f"That frame nests JSON deeper than {MAX_JSON_DEPTH} levels."
            ))
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_json(events.error(code="bad_json", message="That frame is not valid JSON."))
            return
        await self.receive_json(frame)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_json(events.error(
                code="invalid_frame", message="A frame is a JSON object with a string `type`."
            ))
            return
        handler = self.HANDLERS.get(content["type"])
        client_id = content.get("client_id") if isinstance(content.get("client_id"), str) else None
        if handler is None:
            await self.send_json(events.error(
                code="unknown_type", message=f"Unknown frame type {content['type'][:40]!r}.", client_id=client_id
            ))
            return
        try:
            await handler(self, content)
        except _InvalidFrame as exc:
            await self.send_json(events.error(code="invalid_frame", message=str(exc), client_id=client_id))
        except services.RunRejected as exc:
            await self.send_json(events.error(
                code=exc.code, message=exc.message, client_id=client_id, retryable=exc.retryable,
                reset_at=exc.reset_at, upgrade_url=exc.upgrade_url,
            ))
        except Exception:
            logger.exception("chat frame %s failed", content["type"])
            await self.send_json(events.error(
                code="internal_error", message="Something went wrong on our side. Try again.", client_id=client_id,
                retryable=True,
            ))

    # --- handlers --------------------------------------------------------------------

    async def _start(self, frame: dict, *, action: str) -> None:
        client_id = _str_field(frame, "client_id", max_len=MAX_CLIENT_ID_CHARS)
        tier = _str_field(frame, "tier", max_len=64)
        conversation_id = frame.get("conversation_id")
        if action == "send":
            if conversation_id is not None and not isinstance(conversation_id, str):
                raise _InvalidFrame("`conversation_id` must be a string or null.")
        else:
            conversation_id = _str_field(frame, "conversation_id", max_len=64)
        message_id = _str_field(frame, "message_id", max_len=64) if action != "send" else None
        temporary = frame.get("temporary", False) if action == "send" else False
        if not isinstance(temporary, bool):
            raise _InvalidFrame("`temporary` must be true or false.")
        project_id = frame.get("project_id") if action == "send" and conversation_id is None else None
        if project_id is not None and (not isinstance(project_id, str) or len(project_id) > 64):
            raise _InvalidFrame("`project_id` must be a string or null.")
        attachment_ids = frame.get("attachments", []) if action in ("send", "edit") else []
        if not isinstance(attachment_ids, list) or not all(
            isinstance(a, str) and 0 < len(a) <= 64 for a in attachment_ids
        ) or len(attachment_ids) > MAX_ATTACHMENTS_PER_FRAME:
            raise _InvalidFrame(f"`attachments` must be a list of at most {MAX_ATTACHMENTS_PER_FRAME} attachment ids.")
        content = ""
        if action in ("send", "edit"):
            content = frame.get("content")
            if not isinstance(content, str):
                raise _InvalidFrame("`content` must be a string.")
            content = content.strip()
            if not content:
                raise _InvalidFrame("The message is empty.")
            limit = settings.ASSISTANT_MAX_MESSAGE_CHARS
            if len(content) > limit:
                await self.send_json(events.error(
                    code="too_large",
                    message=f"Messages may be at most {limit} characters (this one has {len(content)}).",
                    client_id=client_id,
                ))
                return
        spec = await runs.run_launch(
            admit=lambda: not self.session_ended,
            owner=self.owner,
            user=self.user,
            action=action,
            client_id=client_id,
            conversation_id=conversation_id,
            tier_slug=tier,
            content=content,
            message_id=message_id,
            temporary=temporary,
            project_id=project_id,
            attachment_ids=attachment_ids,
        )
        if spec.temporary:
            self.temporary_conversations.add(spec.conversation_id)
        await self._join_conversation(spec.conversation_id)
        await self.send_json(events.run_started(spec=spec))
        self._follow(spec.run_id, conversation_id=spec.conversation_id, resync=False)

    async def handle_send(self, frame: dict) -> None:
        await self._start(frame, action="send")

    async def handle_regenerate(self, frame: dict) -> None:
        await self._start(frame, action="regenerate")

    async def handle_edit(self, frame: dict) -> None:
        await self._start(frame, action="edit")

    async def handle_continue(self, frame: dict) -> None:
        await self._start(frame, action="continue")

    async def _owned_run(self, frame: dict):
        run_id = _str_field(frame, "run_id", max_len=64)
        run = await database_sync_to_async(selectors.run_get_for_owner)(owner=self.owner, run_id=run_id)
        if run is None:
            raise services.RunRejected("not_found", events.RUN_NOT_FOUND_MESSAGE)
        return run

    async def handle_subscribe(self, frame: dict) -> None:
        # `after_seq` is checked but not needed: a subscriber always gets the whole text so far.
        after_seq = frame.get("after_seq", 0)
        if not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0:
            raise _InvalidFrame("`after_seq` must be a non-negative integer.")
        run = await self._owned_run(frame)
        await self._join_conversation(str(run.conversation_id))
        self._follow(str(run.pk), conversation_id=str(run.conversation_id), resync=True, text_before=_text_before(run))

    async def handle_stop(self, frame: dict) -> None:
        run = await self._owned_run(frame)
        run_id = str(run.pk)
        if run_id not in self.followers:
            await self._join_conversation(str(run.conversation_id))
            self._follow(run_id, conversation_id=str(run.conversation_id), resync=True, text_before=_text_before(run))
        if run.status == run.Status.RUNNING:
            await runs.run_stop(run_id=run_id, owner=run.owner)

    async def handle_ping(self, frame: dict) -> None:
        await self.send_json(events.pong())

    HANDLERS = {
        events.MESSAGE_SEND: handle_send,
        events.MESSAGE_REGENERATE: handle_regenerate,
        events.MESSAGE_EDIT: handle_edit,
        events.MESSAGE_CONTINUE: handle_continue,
        events.RUN_SUBSCRIBE: handle_subscribe,
        events.RUN_STOP: handle_stop,
        events.PING: handle_ping,
    }

    # --- following runs --------------------------------------------------------------

    async def _join_conversation(self, conversation_id: str) -> None:
        await self._join_group(events.conversation_group(conversation_id))

    async def _join_group(self, group: str) -> None:
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    def _follow(self, run_id: str, *, conversation_id: str, resync: bool, text_before: str = "") -> None:
        previous = self.followers.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        for done_id in [rid for rid, task in self.followers.items() if task.done()]:
            del self.followers[done_id]
        if len(self.followers) >= MAX_FOLLOWED_RUNS:
            oldest = next(iter(self.followers))
            self.followers.pop(oldest).cancel()
        frames = run_follow(
            owner=self.owner, run_id=run_id, conversation_id=conversation_id, resync=resync, text_before=text_before
        )
        self.followers[run_id] = asyncio.get_running_loop().create_task(self._forward(run_id, frames))

    async def _forward(self, run_id: str, frames: AsyncIterator[dict]) -> None:
        try:
            async with aclosing(frames):
                async for frame in frames:
                    await self.send_json(frame)
        except Exception:  # the socket went away under us; the run goes on
            logger.exception("forwarding run %s failed", run_id)

    # --- channel-layer events ----------------------------------------------------------

    async def conversation_event(self, message: dict) -> None:
        """A frame published to a conversation's sockets (events.event_send)."""
        await self.send_json(message["event"])

    async def session_check(self, message: dict) -> None:
        """One of this person's sessions ended (logout: this one?) or may have (a password
        change, account deletion: read it again now, whatever the cache says)."""
        if self.session_ended:
            return
        ended = message.get("ended_session") or ""
        if (ended and ended == self.session_tag) or not await self._session_current(force=True):
            await self._session_end()

    # --- the session behind the socket -----------------------------------------------

    async def _session_current(self, *, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self.session_checked_at < SESSION_RECHECK_S:
            return True
        current = await database_sync_to_async(session_is_current)(
            session_key=self.session_key, user_id=self.owner.user_id
        )
        self.session_checked_at = now
        return current

    async def _session_end(self) -> None:
        """Stop speaking for a session that has ended: no more frames either way (the runs
        go on and are saved), an error frame saying so, and close 4001."""
        if self.session_ended:
            return
        self.session_ended = True
        for task in self.followers.values():
            task.cancel()
        self.followers.clear()
        await self.send_json(events.error(code="session_ended", message=events.SESSION_ENDED_MESSAGE))
        await self.close(code=CLOSE_SESSION_ENDED)
