"""assistant/events.py owns the protocol's events; docs/protocol.md is its mirror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant import events

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def documented_types() -> dict[str, set[str]]:
    """The `### `type`` headings of each `## ` section of docs/protocol.md."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in PROTOCOL_MD.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = set()
        elif line.startswith("### ") and current is not None:
            match = re.match(r"### `([^`]+)`", line)
            if match:
                sections[current].add(match.group(1))
    return sections


@pytest.mark.parametrize(
    ("section", "defined"),
    [
        ("Client → server frames", events.CLIENT_FRAMES),
        ("Server → client frames", events.SERVER_FRAMES),
        ("Inside the server", events.INTERNAL_EVENTS),
    ],
)
def test_every_event_type_is_documented_and_every_documented_type_is_defined(section, defined):
    assert documented_types()[section] == set(defined)


def test_no_section_other_than_those_three_documents_an_event_type():
    others = {name: types for name, types in documented_types().items()
              if name not in ("Client → server frames", "Server → client frames", "Inside the server")}
    assert all(not types for types in others.values()), others


def test_the_consumer_dispatches_exactly_the_client_frames():
    from assistant.consumers import ChatConsumer

    assert set(ChatConsumer.HANDLERS) == events.CLIENT_FRAMES


def test_a_run_log_holds_server_frames_and_end():
    assert events.RUN_LOG_EVENTS - {events.END} <= events.SERVER_FRAMES
    assert not events.is_for_client(events.end(run_id="r"))
    assert events.is_for_client(events.delta(run_id="r", text="x"))


@pytest.mark.parametrize(
    ("final", "status"),
    [
        (None, "running"),
        ({"type": "done", "status": "stopped"}, "stopped"),
        ({"type": "error", "code": "interrupted"}, "interrupted"),
        ({"type": "error", "code": "upstream_timeout"}, "error"),
    ],
)
def test_a_runs_status_from_its_final_event(final, status):
    assert events.status_of_final(final) == status
