"""Attachments: the text of a file sent with a message.

A file is uploaded over HTTP (multipart POST with the CSRF token: never over the socket,
whose frames Daphne caps at 1 MiB), its text extracted here on the server, and an
Attachment row kept for its uploader; the `message.send` frame then names it by id
(`attachments: [id, ...]`). run_begin attaches it to the new user message in the same
transaction as the message, so a message that cannot start leaves the upload unattached
and nothing half-saved.

Text, Markdown, code and CSV files must be UTF-8 (a UTF-8 or UTF-16 byte-order mark is
honoured); a PDF's text is extracted with pypdf. The limits are settings:
ASSISTANT_ATTACHMENT_MAX_BYTES, ASSISTANT_ATTACHMENT_MAX_PAGES (a PDF's pages),
ASSISTANT_ATTACHMENT_MAX_CHARS (the extracted text) and ASSISTANT_MESSAGE_MAX_ATTACHMENTS.
What cannot be read (binary, an encrypted or broken PDF, a PDF without text) is refused
with a message saying why, and nothing is saved.

In the prompt an attachment is part of its turn (`turn_content`), counted like any other
text when the history is fitted to the tier's context; it is stored with the message,
shown as a chip, included in exports, and given to the ad decision as a turn of its own
(so the sensitive-topic gate reads it).
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from assistant.models import Attachment
from assistant.selectors import Owner, parse_uuid

logger = logging.getLogger(__name__)

Kind = Attachment.Kind

# By file extension (lower case). Browsers' content types for code are unreliable
# (text/x-python, application/octet-stream, ...), so the name decides; the bytes are
# then checked for what the name claims.
EXTENSIONS: dict[str, str] = {
    ".txt": Kind.TEXT, ".text": Kind.TEXT, ".log": Kind.TEXT,
    ".md": Kind.MARKDOWN, ".markdown": Kind.MARKDOWN,
    ".csv": Kind.CSV, ".tsv": Kind.CSV,
    ".pdf": Kind.PDF,
    **{ext: Kind.CODE for ext in (
        ".py", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg",
        ".html", ".htm", ".css", ".scss", ".xml", ".sql", ".sh", ".bash", ".c", ".h", ".cc", ".cpp", ".hpp",
        ".java", ".kt", ".go", ".rs", ".rb", ".php", ".swift", ".cs", ".r", ".lua", ".pl", ".scala", ".dart",
    )},
}
ACCEPT = ",".join(sorted(EXTENSIONS))  # the file input's accept attribute


class AttachmentError(Exception):
    """An upload or a use of one that is refused; `code` is the protocol's, `message`
    says why in words a person can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _size_text(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} KB"


def attachment_kind(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    kind = EXTENSIONS.get(suffix)
    if kind is None:
        raise AttachmentError(
            "unsupported_type",
            f"{name!s} cannot be attached: attach text, Markdown, code, CSV or PDF files"
            f" ({suffix or 'no extension'} is not one of them).",
        )
    return kind


def _text_from_bytes(name: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    raise AttachmentError(
        "unreadable", f"{name} is not a text file Lhama can read (binary, or not UTF-8). Save it as UTF-8 text."
    )


def _text_from_pdf(name: str, data: bytes) -> tuple[str, int]:
    # pypdf: a maintained, pure-Python PDF reader (no system libraries to install).
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.lstrip()[:5] == b"%PDF-":
        raise AttachmentError("unreadable", f"{name} is not a PDF file (it does not start like one).")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An owner password only (printing or copying restricted) still opens with an
            # empty user password; a real user password does not.
            try:
                opened = reader.decrypt("")
            except (PyPdfError, NotImplementedError):
                opened = 0
            if not opened:
                raise AttachmentError(
                    "encrypted", f"{name} is password-protected. Remove the password and attach it again."
                )
        pages = len(reader.pages)
        limit = settings.ASSISTANT_ATTACHMENT_MAX_PAGES
        if pages > limit:
            raise AttachmentError(
                "too_large", f"{name} has {pages} pages; at most {limit} pages can be attached. Split it and try again."
            )
        texts = [page.extract_text() or "" for page in reader.pages]
    except AttachmentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        # pypdf raises these for damaged files; the reason goes to the log, not the page.
        logger.info("attachment %r: unreadable PDF (%s: %s)", name, type(exc).__name__, exc)
        raise AttachmentError("unreadable", f"{name} is damaged or not a PDF Lhama can read.") from exc
    text = "\n\n".join(t.strip() for t in texts if t.strip())
    if not text:
        raise AttachmentError(
            "unreadable", f"{name} has no text to read (a scanned PDF is images only). Attach a PDF with text."
        )
    return text, pages


def attachment_extract(*, name: str, data: bytes) -> tuple[str, str, int | None]:
    """(kind, text, pages) of a file, or AttachmentError saying why it cannot be read."""
    kind = attachment_kind(name)
    limit = settings.ASSISTANT_ATTACHMENT_MAX_BYTES
    if len(data) > limit:
        raise AttachmentError(
            "too_large", f"{name} is {_size_text(len(data))}; files may be at most {_size_text(limit)}."
        )
    if not data:
        raise AttachmentError("unreadable", f"{name} is empty.")
    pages = None
    if kind == Kind.PDF:
        text, pages = _text_from_pdf(name, data)
    else:
        text = _text_from_bytes(name, data)
    text = text.replace("\x00", "").replace("\r\n", "\n").strip()
    if not text:
        raise AttachmentError("unreadable", f"{name} has no text in it.")
    max_chars = settings.ASSISTANT_ATTACHMENT_MAX_CHARS
    if len(text) > max_chars:
        raise AttachmentError(
            "too_large",
            f"{name} has {len(text):,} characters of text; at most {max_chars:,} can be attached.",
        )
    return kind, text, pages


def attachment_upload(*, owner: Owner, name: str, data: bytes) -> Attachment:
    """Extract the file's text and keep it for `owner` (unattached until a message uses
    it). Raises AttachmentError; then nothing is saved."""
    if not owner.is_known:
        raise AttachmentError("session_required", "Your session has expired. Reload the page to attach files.")
    name = PurePath(name.replace("\\", "/")).name.strip()[:255] or "file"
    kind, text, pages = attachment_extract(name=name, data=data)
    return Attachment.objects.create(
        user_id=owner.user_id,
        session_key="" if owner.user_id else owner.session_key,
        name=name,
        kind=kind,
        size=len(data),
        pages=pages,
        text=text,
    )


def _owned(owner: Owner) -> QuerySet[Attachment]:
    if owner.user_id:
        return Attachment.objects.filter(user_id=owner.user_id)
    if owner.session_key:
        return Attachment.objects.filter(user__isnull=True, session_key=owner.session_key)
    return Attachment.objects.none()


def attachments_for_send(*, owner: Owner, ids: Iterable) -> list[Attachment]:
    """The owner's unattached uploads named by `ids`, in that order; AttachmentError
    ("not_found") if any is not theirs, already sent, or does not exist."""
    wanted: list[uuid.UUID] = []
    for value in ids:
        pk = parse_uuid(value)
        if pk is None:
            raise AttachmentError("not_found", "That attachment does not exist.")
        if pk not in wanted:
            wanted.append(pk)
    limit = settings.ASSISTANT_MESSAGE_MAX_ATTACHMENTS
    if len(wanted) > limit:
        raise AttachmentError("too_large", f"A message may have at most {limit} attachments.")
    found = {a.pk: a for a in _owned(owner).filter(pk__in=wanted, message__isnull=True)}
    if len(found) != len(wanted):
        raise AttachmentError("not_found", "That attachment does not exist (or was already sent).")
    return [found[pk] for pk in wanted]


def attachment_delete_unsent(*, owner: Owner, attachment_id) -> bool:
    """Remove an upload that no message uses yet (the chip's ×). True when one went."""
    pk = parse_uuid(attachment_id)
    if pk is None:
        return False
    deleted, _ = _owned(owner).filter(pk=pk, message__isnull=True).delete()
    return bool(deleted)


def attachments_attach(*, attachments: list[Attachment], message) -> None:
    """Make the uploads part of `message` (in the caller's transaction). An upload still
    unattached is taken; one already sent with another message (an edited question
    keeping its files) is copied. Raises AttachmentError when an upload was taken by
    another message meanwhile: the caller's transaction is then rolled back."""
    fresh = [a.pk for a in attachments if a.message_id is None]
    if fresh and Attachment.objects.filter(pk__in=fresh, message__isnull=True).update(message=message) != len(fresh):
        raise AttachmentError("not_found", "That attachment was already sent with another message.")
    Attachment.objects.bulk_create([
        Attachment(user_id=a.user_id, session_key=a.session_key, message=message, name=a.name, kind=a.kind,
                   size=a.size, pages=a.pages, text=a.text)
        for a in attachments if a.message_id is not None
    ])


def attachments_by_message(*, messages: list) -> dict:
    """{message pk: [its attachments]} for these messages, in one query."""
    if not messages:
        return {}
    grouped: dict = {}
    for attachment in Attachment.objects.filter(message__in=[m.pk for m in messages]).order_by("created_at"):
        grouped.setdefault(attachment.message_id, []).append(attachment)
    return grouped


def attachment_export(attachment: Attachment) -> dict:
    """An attachment in the JSON exports (the conversation's and the account's)."""
    return {"name": attachment.name, "kind": attachment.kind, "size": attachment.size, "pages": attachment.pages,
            "text": attachment.text}


def attachment_markdown(attachment: Attachment) -> list[str]:
    """An attachment in the Markdown export: its name, then its text in a code fence
    longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", attachment.text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"**Attached: {attachment.name}**", "", fence, attachment.text.rstrip(), fence, ""]


def attachments_sweep_unsent() -> int:
    """Delete uploads that no message used within ASSISTANT_ATTACHMENT_UNSENT_S (a file
    attached and never sent, or left behind by a message that was refused). Returns how
    many went."""
    cutoff = timezone.now() - timedelta(seconds=settings.ASSISTANT_ATTACHMENT_UNSENT_S)
    deleted, _ = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff).delete()
    return deleted


def turn_content(content: str, attachments: Iterable) -> str:
    """A user turn as the model reads it: the message, then each attachment's text
    between markers that name the file. `attachments` are Attachment rows (or anything
    with name and text)."""
    parts = [content]
    for attachment in attachments:
        parts.append(f"[Attached file: {attachment.name}]\n{attachment.text}\n[End of {attachment.name}]")
    return "\n\n".join(p for p in parts if p)


def too_large_message(*, attachments: list, fits_tokens: int) -> str:
    """What a person reads when a message's attachments do not fit the model's context:
    how much does (in characters, about 3 per token as inference.estimate_tokens counts)."""
    total = sum(len(a.text) for a in attachments)
    fits_chars = max(0, fits_tokens) * 3
    names = ", ".join(a.name for a in attachments)
    return (
        f"The attached text ({names}: {total:,} characters) is too long for this model's context window:"
        f" about {fits_chars:,} characters fit beside your message. Attach less of it, or choose a model"
        " with a larger context."
    )
