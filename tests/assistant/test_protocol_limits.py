"""docs/protocol.md states the socket's limits and close codes as the code has them:
the web server's 1 MiB message limit (a client sees 1006 above it), the JSON depth,
the session-ended close."""

from __future__ import annotations

import re
from pathlib import Path

from daphne.cli import CommandLineInterface

from assistant import consumers

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_MD = (ROOT / "docs" / "protocol.md").read_text()
MIB = 1024 * 1024


def close_codes() -> dict[str, str]:
    section = PROTOCOL_MD.split("## Close codes", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| (\d{4}) \| (.+) \|$", section, flags=re.MULTILINE))


def test_daphne_drops_messages_over_1_mib_and_no_deployment_changes_that():
    parser = CommandLineInterface().parser
    assert parser.get_default("websocket_max_message_size") == MIB
    assert parser.get_default("websocket_max_frame_size") == MIB
    for path in (ROOT / "platform").iterdir():
        if path.is_file():
            assert "websocket-max" not in path.read_text(errors="replace"), path


def test_the_1_mib_limit_and_its_1006_close_are_documented():
    assert "a message over 1 MiB" in close_codes()["1006"]
    limits = PROTOCOL_MD.split("## Limits", 1)[1].split("\n## ", 1)[0]
    assert "Messages over 1 MiB never reach Lhama" in limits and "1006" in limits


def test_the_json_depth_and_the_session_close_are_documented_as_the_consumer_has_them():
    assert f"deeper than {consumers.MAX_JSON_DEPTH} levels" in PROTOCOL_MD
    assert str(consumers.CLOSE_SESSION_ENDED) in close_codes()
    assert close_codes()[str(consumers.CLOSE_SESSION_ENDED)].startswith("session ended")
    assert f"at most every {consumers.SESSION_RECHECK_S:g} s" in PROTOCOL_MD
