"""Attachments (assistant.attachments): each kind's text extracted on the server, what
cannot be read refused with a reason and nothing saved, the upload over HTTP (CSRF),
and the text in the prompt, within the context, stored with the message, in the
exports and in the ad decision's turns."""

from __future__ import annotations

import io
import json
import secrets

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pypdf import PdfReader, PdfWriter

from assistant import attachments as att
from assistant.models import Attachment, Conversation, Message
from assistant.selectors import Owner
from tests.assistant.conftest import chat_requests, guest_session, open_socket
from tests.assistant.test_ads_in_chat import gpu_ad  # noqa: F401 -- the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

OWNER = Owner(user_id=None, session_key="k" * 32)


def pdf_bytes(pages: list[str]) -> bytes:
    """A small valid PDF whose pages each show one line of `pages` in Helvetica."""
    n = len(pages)
    font = 3 + 2 * n
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>"]
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET" if text else ""
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted(data: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=secrets.token_hex(8))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


REPORT = pdf_bytes(["Quarterly revenue was 42 million euros.", "The zebra project ships in May."])


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "kind", "text"),
    [
        ("notes.txt", b"Buy milk.\r\nCall Ana.", "text", "Buy milk.\nCall Ana."),
        ("README.md", b"# Title\n\n- one\n- two\n", "markdown", "# Title\n\n- one\n- two"),
        ("app.py", b"def greet(name):\n    return f'Hi {name}'\n", "code", "def greet(name):\n    return f'Hi {name}'"),
        ("sales.csv", b"\xef\xbb\xbfmonth,total\nJan,10\nFeb,12\n", "csv", "month,total\nJan,10\nFeb,12"),
        ("umlaut.txt", "Grüße aus Köln".encode("utf-16"), "text", "Grüße aus Köln"),
        ("report.pdf", REPORT, "pdf", "Quarterly revenue was 42 million euros.\n\nThe zebra project ships in May."),
    ],
)
def test_each_kind_is_extracted(name, data, kind, text):
    attachment = att.attachment_upload(owner=OWNER, name=name, data=data)
    assert (attachment.kind, attachment.text, attachment.size) == (kind, text, len(data))
    assert attachment.message_id is None
    assert attachment.pages == (2 if kind == "pdf" else None)


def test_a_pdf_with_only_an_owner_password_is_read():
    attachment = att.attachment_upload(owner=OWNER, name="locked.pdf", data=encrypted(REPORT, user_password=""))
    assert "42 million" in attachment.text


@pytest.mark.parametrize(
    ("name", "data", "code", "says"),
    [
        ("secret.pdf", encrypted(REPORT, user_password="hunter2"), "encrypted", "password-protected"),
        ("broken.pdf", REPORT[: len(REPORT) // 3], "unreadable", "damaged"),
        ("garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 20, "unreadable", "damaged"),
        ("fake.pdf", b"just some text", "unreadable", "not a PDF"),
        ("scan.pdf", pdf_bytes(["", ""]), "unreadable", "no text"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unreadable", "not a text file"),
        ("latin1.txt", "café".encode("latin-1"), "unreadable", "UTF-8"),
        ("empty.md", b"", "unreadable", "empty"),
        ("blank.txt", b"  \n\n ", "unreadable", "no text"),
        ("tool.exe", b"MZ\x90\x00", "unsupported_type", "text, Markdown, code, CSV or PDF"),
        ("letter.docx", b"PK\x03\x04", "unsupported_type", ".docx"),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_reason_and_nothing_is_saved(name, data, code, says):
    with pytest.raises(att.AttachmentError) as caught:
        att.attachment_upload(owner=OWNER, name=name, data=data)
    assert caught.value.code == code
    assert says in caught.value.message
    assert name in caught.value.message or code == "unsupported_type"
    assert Attachment.objects.count() == 0


def test_oversize_files_are_refused(settings):
    settings.ASSISTANT_ATTACHMENT_MAX_BYTES = 1024
    with pytest.raises(att.AttachmentError) as caught:
        att.attachment_upload(owner=OWNER, name="big.txt", data=b"a" * 1025)
    assert caught.value.code == "too_large"
    assert "at most 1 KB" in caught.value.message
    att.attachment_upload(owner=OWNER, name="fits.txt", data=b"a" * 1024)
    assert Attachment.objects.count() == 1


def test_a_pdf_over_the_page_limit_is_refused(settings):
    settings.ASSISTANT_ATTACHMENT_MAX_PAGES = 3
    with pytest.raises(att.AttachmentError) as caught:
        att.attachment_upload(owner=OWNER, name="book.pdf", data=pdf_bytes(["page"] * 4))
    assert caught.value.code == "too_large"
    assert "4 pages; at most 3" in caught.value.message
    assert Attachment.objects.count() == 0


def test_too_much_text_is_refused(settings):
    settings.ASSISTANT_ATTACHMENT_MAX_CHARS = 100
    with pytest.raises(att.AttachmentError, match="101 characters"):
        att.attachment_upload(owner=OWNER, name="long.md", data=b"x" * 101)
    assert Attachment.objects.count() == 0


# --- the upload over HTTP ----------------------------------------------------------------


def _page_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.get("/")  # the chat page gives the guest a session and the CSRF cookie
    return client


def test_upload_over_http_returns_the_id_for_message_send(db):
    client = _page_client()
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    response = client.post("/attachments/", {"file": SimpleUploadedFile("report.pdf", REPORT, "application/pdf")},
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    body = response.json()
    attachment = Attachment.objects.get(pk=body["id"])
    assert body == {"id": str(attachment.pk), "name": "report.pdf", "kind": "pdf", "size": len(REPORT), "pages": 2,
                    "chars": len(attachment.text)}
    assert attachment.session_key == client.session.session_key
    assert attachment.user_id is None


def test_upload_without_the_csrf_token_is_refused(db):
    response = _page_client().post("/attachments/", {"file": SimpleUploadedFile("a.txt", b"hello")})
    assert response.status_code == 403
    assert Attachment.objects.count() == 0


def test_an_unreadable_upload_is_a_clear_error_over_http(db):
    client = _page_client()
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    response = client.post("/attachments/", {"file": SimpleUploadedFile("secret.pdf", encrypted(REPORT, user_password="x"))},
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert response.json() == {"code": "encrypted",
                               "error": "secret.pdf is password-protected. Remove the password and attach it again."}
    response = client.post("/attachments/", {}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert response.json()["error"] == "Choose a file to attach."
    assert Attachment.objects.count() == 0


def test_an_unsent_upload_can_be_removed_by_its_owner_only(db):
    client = _page_client()
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    mine = att.attachment_upload(owner=Owner(user_id=None, session_key=client.session.session_key), name="a.txt",
                                 data=b"mine")
    theirs = att.attachment_upload(owner=OWNER, name="b.txt", data=b"theirs")
    assert client.post(f"/attachments/{theirs.pk}/remove", HTTP_X_CSRFTOKEN=token).status_code == 404
    assert client.post(f"/attachments/{mine.pk}/remove", HTTP_X_CSRFTOKEN=token).status_code == 200
    assert list(Attachment.objects.values_list("pk", flat=True)) == [theirs.pk]


# --- in the chat -------------------------------------------------------------------------


def send_frame(content: str, attachments: list[str], **extra) -> dict:
    return {"type": "message.send", "client_id": "c1", "conversation_id": None, "content": content,
            "tier": "llama-3.1-8b", "attachments": attachments, **extra}


async def upload(session_key: str, name: str, data: bytes) -> Attachment:
    return await sync_to_async(att.attachment_upload)(owner=Owner(user_id=None, session_key=session_key), name=name,
                                                      data=data)


@pytest.fixture
def guest(free_plan):
    return guest_session()


async def test_the_attachment_text_goes_into_the_prompt_and_is_stored_with_the_message(upstream, tier, guest):
    report = await upload(guest, "report.pdf", REPORT)
    socket = await open_socket(guest)
    await socket.send(send_frame("What does the report say about revenue?", [str(report.pk)]))
    frames = await socket.until("done", "error")
    assert frames[-1]["type"] == "done", frames[-1]
    question = chat_requests(upstream)[-1]["messages"][-1]
    assert question["role"] == "user"
    assert question["content"].startswith("What does the report say about revenue?")
    assert "[Attached file: report.pdf]\nQuarterly revenue was 42 million euros." in question["content"]
    user_message = await sync_to_async(Message.objects.get)(pk=frames[0]["user_message_id"])
    assert user_message.content == "What does the report say about revenue?"  # the typed text, as typed
    assert await sync_to_async(lambda: [a.pk for a in user_message.attachments.all()])() == [report.pk]

    # The next turn's history still carries the file's text (it is part of that turn).
    await socket.send({"type": "message.send", "client_id": "c2", "conversation_id": frames[0]["conversation_id"],
                       "content": "And in May?", "tier": "llama-3.1-8b"})
    assert (await socket.until("done", "error"))[-1]["type"] == "done"
    history = chat_requests(upstream)[-1]["messages"]
    assert "The zebra project ships in May." in history[1]["content"]
    await socket.close()


async def test_an_attachment_too_large_for_the_context_says_how_much_fits_and_saves_nothing(upstream, tier, guest):
    await sync_to_async(type(tier).objects.filter(pk=tier.pk).update)(context_length=1024, max_output_tokens=256)
    long_text = await upload(guest, "novel.txt", ("All work and no play. " * 400).encode())
    socket = await open_socket(guest)
    await socket.send(send_frame("Summarise this", [str(long_text.pk)]))
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "too_large")
    assert "novel.txt: 8,799 characters" in error["message"]
    assert "characters fit beside your message" in error["message"]
    fits = int(error["message"].split("about ")[1].split(" characters fit")[0].replace(",", ""))
    assert 0 < fits < 8799
    assert await sync_to_async(Message.objects.count)() == 0
    assert await sync_to_async(Conversation.objects.count)() == 0
    await sync_to_async(long_text.refresh_from_db)()
    assert long_text.message_id is None  # still the uploader's, to send with a shorter model or remove
    assert chat_requests(upstream) == []
    await socket.close()


async def test_another_persons_or_an_already_sent_attachment_is_refused(upstream, tier, guest):
    other = await sync_to_async(guest_session)()
    theirs = await upload(other, "theirs.txt", b"their secrets")
    socket = await open_socket(guest)
    await socket.send(send_frame("Read it", [str(theirs.pk)]))
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "not_found")
    assert await sync_to_async(Message.objects.count)() == 0

    mine = await upload(guest, "mine.txt", b"my notes")
    await socket.send(send_frame("Read it", [str(mine.pk)]))
    assert (await socket.until("done", "error"))[-1]["type"] == "done"
    await socket.send(send_frame("Again", [str(mine.pk)], client_id="c2"))
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "not_found")
    assert await sync_to_async(Message.objects.filter(role="user").count)() == 1
    await socket.close()


async def test_attachments_must_be_a_list_of_ids(upstream, tier, guest):
    socket = await open_socket(guest)
    await socket.send(send_frame("Hi", "not-a-list"))  # type: ignore[arg-type]
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "invalid_frame")
    await socket.close()


async def test_the_attachment_text_is_a_turn_for_the_ad_decision(upstream, tier, member, sessions, gpu_ad):  # noqa: F811
    """The sensitive-topic gate reads attached text like any turn: the same GPU question
    gets its ad alone, and none with a medical letter attached."""
    from tests.assistant.test_ads_in_chat import GPU_QUESTION

    socket = await open_socket(sessions["member"])
    await socket.send(send_frame(GPU_QUESTION, []))
    await socket.until("done")
    assert (await socket.recv())["type"] == "ad"

    letter = await sync_to_async(att.attachment_upload)(
        owner=Owner(user_id=member.pk), name="letter.txt",
        data=b"Diagnosis: major depression. The patient takes antidepressants and sees a psychiatrist weekly.",
    )
    await socket.send(send_frame(GPU_QUESTION, [str(letter.pk)], client_id="c2"))
    await socket.until("done")
    assert await socket.nothing(timeout=1.5)  # no ad frame follows (the decision's budget, plus a margin)
    await socket.close()


def test_the_exports_include_the_attachments(member):
    from accounts.services import user_data_export
    from assistant.conversations import conversation_export_data, conversation_export_markdown

    conversation = Conversation.objects.create(user=member, title="Report")
    question = Message.objects.create(conversation=conversation, role="user", content="Summarise it")
    att.attachments_attach(attachments=[att.attachment_upload(owner=Owner(user_id=member.pk), name="report.pdf",
                                                              data=REPORT)], message=question)
    data = conversation_export_data(conversation=conversation)
    assert data["messages"][0]["attachments"] == [
        {"name": "report.pdf", "kind": "pdf", "size": len(REPORT), "pages": 2,
         "text": "Quarterly revenue was 42 million euros.\n\nThe zebra project ships in May."}]
    markdown = conversation_export_markdown(conversation=conversation)
    assert "Attached: report.pdf" in markdown
    assert "The zebra project ships in May." in markdown
    exported = json.dumps(user_data_export(user=member), default=str)
    assert "The zebra project ships in May." in exported


def test_the_chip_is_shown_with_the_message(member, tier):
    conversation = Conversation.objects.create(user=member, title="Report")
    question = Message.objects.create(conversation=conversation, role="user", content="Summarise it")
    att.attachments_attach(attachments=[att.attachment_upload(owner=Owner(user_id=member.pk), name="<img src=x onerror=alert(1)>.md",
                                                              data=b"# hi")], message=question)
    client = Client()
    client.force_login(member)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert 'class="attachment-chip"' in page
    assert "&lt;img src=x onerror=alert(1)&gt;.md" in page
    assert "<img src=x" not in page


def test_uploads_never_sent_are_swept_after_a_day_and_sent_ones_stay(member, settings):
    from datetime import timedelta

    from django.utils import timezone

    from assistant.tasks import attachments_sweep_unsent

    owner = Owner(user_id=member.pk)
    old_unsent = att.attachment_upload(owner=owner, name="old.txt", data=b"forgotten")
    att.attachment_upload(owner=owner, name="new.txt", data=b"about to be sent")
    old_sent = att.attachment_upload(owner=owner, name="sent.txt", data=b"kept with its message")
    conversation = Conversation.objects.create(user=member)
    message = Message.objects.create(conversation=conversation, role="user", content="see file")
    att.attachments_attach(attachments=[old_sent], message=message)
    day_ago = timezone.now() - timedelta(seconds=settings.ASSISTANT_ATTACHMENT_UNSENT_S + 60)
    Attachment.objects.filter(pk__in=[old_unsent.pk, old_sent.pk]).update(created_at=day_ago)
    assert attachments_sweep_unsent() == 1
    assert set(Attachment.objects.values_list("name", flat=True)) == {"new.txt", "sent.txt"}

