"""A paced OpenAI-compatible upstream in a process of its own, for the relay benchmark.

    python -m bench.paced_upstream --port 8123 --ttft 0.05 --interval 0.02 --tokens 200 --log side.jsonl

Every answer is `tokens` tokens, the first `ttft` seconds after the request arrived and
then one every `interval` seconds. Token `seq` is word `seq` of a fixed English text
(`expected_words`), so the whole answer is known in advance: a client compares what it
got word by word and sees any token lost, repeated or out of order, and the k-th word
it got is token k. The side log (one JSON line per request: the chat id found in its
last user message, when the request arrived, and each token's send time on
CLOCK_MONOTONIC in microseconds, one clock for every process of the machine) gives
every token's lag exactly. (The words are plain English on the question's topic, not
stamps like `s12.123456`: the ad decision reads the previous answer, and gibberish
there made the language gate refuse every ad.)

It also answers llama.cpp's token count (so Lhama's exact fit never waits on a guess).
Pacing sleeps until each token's due time (not `interval` after the last one), so a busy
machine delays tokens but does not stretch the whole answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

from aiohttp import web

CHAT_ID = re.compile(r"\[chat ([\w-]+)\]")


# On the question's topic, and checked with the sensitive gate: an earlier text ("... without
# losing work or paying for idle time") read as self-harm to it, and no ad was ever decided.
TEXT = (
    "Look at the GPU model and its memory, the price per hour, the disk and network speed, the regions "
    "on offer and the support plan before you pick a provider for fine tuning."
)
WORDS = TEXT.split()


def expected_words(count: int) -> list[str]:
    return [WORDS[seq % len(WORDS)] for seq in range(count)]


def now_us() -> int:
    return time.monotonic_ns() // 1000


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class PacedUpstream:
    def __init__(self, *, ttft: float, interval: float, tokens: int, log_path: str | None) -> None:
        self.ttft, self.interval, self.tokens = ttft, interval, tokens
        self.log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115 - lives with the process

    async def chat(self, request: web.Request) -> web.StreamResponse:
        received = now_us()
        body = await request.json()
        last_user = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        found = CHAT_ID.search(str(last_user))
        title = str(body.get("messages", [{}])[0].get("content", "")).startswith("Write a short title")
        count = 3 if title else min(self.tokens, int(body.get("max_tokens") or self.tokens))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent: list[int] = []
        try:
            await response.write(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
            for seq in range(count):
                due = start + self.ttft + seq * self.interval
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = now_us()
                await response.write(_chunk("Title " if title else f"{WORDS[seq % len(WORDS)]} "))
                sent.append(t)
            await response.write(_chunk(None, "stop"))
            usage = {"prompt_tokens": 20, "completion_tokens": count, "total_tokens": 20 + count}
            await response.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            if self.log is not None and found and not title:
                self.log.write(json.dumps({"chat": found.group(1), "received_us": received, "sent_us": sent}) + "\n")
        return response

    async def count(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"count": len(str(body.get("input", "")).split()) + 1})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--log")
    args = parser.parse_args()
    upstream = PacedUpstream(ttft=args.ttft, interval=args.interval, tokens=args.tokens, log_path=args.log)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.chat)
    app.router.add_post("/extras/tokenize/count", upstream.count)
    app.router.add_get("/v1/models", upstream.models)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
