"""A fake OpenAI-compatible chat-completions server: a real HTTP server (aiohttp, on its
own thread and event loop) with a controllable token rate and faults. Used by the tests
and the benchmarks; it stands where vLLM or llama.cpp stand.

    with FakeUpstream() as upstream:
        upstream.default = Script(tokens=["Hel", "lo"], interval=0.01)
        upstream.push(Script(fault="http_500"))     # the next request only
        ... upstream.base_url, upstream.requests, upstream.disconnects

Faults: "stall_first" (never sends a token), "stall_mid" (stops after `fault_after`
tokens, connection kept open), "drop_mid" (closes the connection after `fault_after`
tokens), "http_500", "http_400", "malformed" (a non-JSON chunk after `fault_after`
tokens), "refuse" is simulated by pointing a tier at a closed port instead.
`usage=False` omits the final usage chunk (like llama.cpp's server).

Context length: like vLLM, a request whose prompt plus `max_tokens` is over
`max_model_len` (4096 unless a test sets it; None accepts anything) is refused with
HTTP 400 and vLLM's error body, and its record says `refused="context_length"`. The
fake counts a prompt as one token per whitespace-separated word plus 4 per message
(`prompt_tokens`), and its tokenizer endpoints count the same words (+1 on llama.cpp's
`/extras/tokenize/count`). Lhama's counter never counts less: with a tokenizer endpoint
it adds 8 per message and 16 per prompt to these counts; without one it estimates a
token per 3 ASCII characters plus the same overheads, which is at least a token per
word for any text whose words have two characters or more (a word and its space are
3 characters) — the rule the tests' texts keep.

`open_requests` are the chat requests whose response is still being written (not yet
finished, refused, dropped or disconnected by the client).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Script:
    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    interval: float = 0.0  # seconds between tokens
    first_delay: float = 0.0  # seconds before the first token
    fault: str | None = None
    fault_after: int = 2
    usage: bool = True
    stall_s: float = 3600.0


def words(n: int, prefix: str = "w") -> list[str]:
    """n distinct tokens: "w0 ", "w1 ", ..."""
    return [f"{prefix}{i} " for i in range(n)]


@dataclass
class RequestRecord:
    body: dict
    started: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    sent_tokens: int = 0
    disconnected: bool = False
    finished: bool = False
    refused: str = ""  # why the request was refused before streaming ("context_length"), if it was
    open: bool = True  # the handler is still writing its response


class FakeUpstream:
    DEFAULT_MAX_MODEL_LEN = 4096

    def __init__(self, *, model: str = "fake-model", max_model_len: int | None = DEFAULT_MAX_MODEL_LEN) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self._default_max_model_len = max_model_len
        self.default = Script()
        self.scripts: deque[Script] = deque()
        self.route: Callable[[dict], Script | None] | None = None  # per-request override (e.g. titles)
        self.records: list[RequestRecord] = []
        self.tokenize_calls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._lock = threading.Lock()

    # --- control -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict]:
        return [r.body for r in self.records]

    @property
    def disconnects(self) -> int:
        return sum(1 for r in self.records if r.disconnected)

    @property
    def open_requests(self) -> list[RequestRecord]:
        return [r for r in self.records if r.open]

    @property
    def refusals(self) -> list[RequestRecord]:
        return [r for r in self.records if r.refused]

    def push(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def reset(self) -> None:
        self.scripts.clear()
        self.records.clear()
        self.default = Script()
        self.route = None
        self.max_model_len = self._default_max_model_len

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_get("/v1/models", self._models)
            app.router.add_post("/extras/tokenize/count", self._tokenize_count)
            app.router.add_post("/tokenize", self._vllm_tokenize)
            self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-upstream", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- handlers ------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _tokenize_count(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.tokenize_calls += 1
        return web.json_response({"count": len(body.get("input", "").split()) + 1})

    async def _vllm_tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.tokenize_calls += 1
        count = len(body.get("prompt", "").split())
        return web.json_response({"count": count, "max_model_len": self.max_model_len, "tokens": list(range(count))})

    def _script_for(self, body: dict) -> Script:
        if self.route is not None:
            routed = self.route(body)
            if routed is not None:
                return routed
        with self._lock:
            return self.scripts.popleft() if self.scripts else self.default

    @staticmethod
    def prompt_tokens(body: dict) -> int:
        """The prompt's tokens as this fake counts them: words, plus 4 per message."""
        return sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))

    def _context_refusal(self, body: dict) -> web.Response | None:
        """vLLM's answer to a prompt (plus max_tokens) over the model's context length."""
        limit = self.max_model_len
        if limit is None:
            return None
        prompt = self.prompt_tokens(body)
        max_tokens = body.get("max_tokens")
        if prompt >= limit:
            message = (
                f"This model's maximum context length is {limit} tokens. However, your request has "
                f"{prompt} input tokens. Please reduce the length of the input messages."
            )
        elif isinstance(max_tokens, int) and prompt + max_tokens > limit:
            message = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum "
                f"context length is {limit} tokens and your request has {prompt} input tokens "
                f"({max_tokens} > {limit} - {prompt})."
            )
        else:
            return None
        error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
        return web.json_response({"error": error}, status=400)

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RequestRecord(
            body=body, started=time.monotonic(), headers={k.lower(): v for k, v in request.headers.items()}
        )
        self.records.append(record)
        try:
            return await self._answer(request, body, record)
        finally:
            record.open = False

    async def _answer(self, request: web.Request, body: dict, record: RequestRecord) -> web.StreamResponse:
        refusal = self._context_refusal(body)
        if refusal is not None:
            record.refused = "context_length"
            return refusal
        script = self._script_for(body)
        if script.fault == "http_500":
            return web.json_response({"error": {"message": "upstream exploded", "type": "server_error"}}, status=500)
        if script.fault == "http_400":
            return web.json_response(
                {"error": {"message": "This model's maximum context length is 4096 tokens", "type": "BadRequestError"}},
                status=400,
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        tokens = list(script.tokens)
        max_tokens = body.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        try:
            await response.write(self._chunk({"role": "assistant", "content": ""}))
            if script.fault == "stall_first":
                await asyncio.sleep(script.stall_s)
            if script.first_delay:
                await asyncio.sleep(script.first_delay)
            for index, token in enumerate(tokens):
                if index and script.interval:
                    await asyncio.sleep(script.interval)
                if index == script.fault_after:
                    if script.fault == "stall_mid":
                        await asyncio.sleep(script.stall_s)
                    elif script.fault == "drop_mid":
                        request.transport.close()
                        return response
                    elif script.fault == "malformed":
                        await response.write(b"data: {not json\n\n")
                        await asyncio.sleep(script.stall_s)
                await response.write(self._chunk({"content": token}))
                record.sent_tokens += 1
            await response.write(self._chunk({}, finish))
            if script.usage and body.get("stream_options", {}).get("include_usage"):
                usage = {
                    "prompt_tokens": self.prompt_tokens(body),
                    "completion_tokens": len(tokens),
                    "total_tokens": self.prompt_tokens(body) + len(tokens),
                }
                data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": self.model, "choices": [], "usage": usage}
                await response.write(b"data: " + json.dumps(data).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            record.finished = True
        except ConnectionResetError:  # the client closed the stream (a stop): stop "generating"
            record.disconnected = True
        except asyncio.CancelledError:
            record.disconnected = True
            raise
        return response
