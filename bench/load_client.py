"""The relay benchmark's load client, in a process of its own (bench/relay.py runs it).

    python -m bench.load_client ws --url ws://127.0.0.1:8000 --chats chats.json --out result.json
    python -m bench.load_client direct --url http://127.0.0.1:8123/v1 --count 50 --out result.json
    python -m bench.load_client api --url http://127.0.0.1:8000 --key KEY --count 50 --out result.json

`ws`: one socket per chat ({"session": key, "conversation": id or null} in chats.json),
Lhama's real protocol (docs/protocol.md). `direct`: the paced upstream read directly,
the same way (the limit). `api`: the OpenAI-compatible API, when it exists.

It opens every socket first, prints READY and waits for a line on stdin (the harness
samples the web process's memory and CPU then), sends every message at once, and writes
one record per chat: when it was sent (CLOCK_MONOTONIC, µs, the upstream's clock too),
each frame's arrival with the text it carried, and how it ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

QUESTION = "[chat {chat}] I want to rent a cloud GPU to fine-tune a model: what should I look for?"


def now_us() -> int:
    return time.monotonic_ns() // 1000


async def _ws_open(url: str, session: str):
    from websockets.asyncio.client import connect

    ws = await connect(f"{url}/ws/chat/", origin=url.replace("ws://", "http://"),
                       additional_headers={"Cookie": f"sessionid={session}"}, max_size=None, open_timeout=120,
                       ping_interval=None)
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello", hello
    return ws


async def _ws_chat(ws, conversation: str | None, tier: str) -> dict:
    chat = uuid.uuid4().hex[:12]
    record: dict = {"chat": chat, "frames": [], "ad": False, "end": None}
    record["sent_us"] = now_us()
    await ws.send(json.dumps({"type": "message.send", "client_id": chat, "conversation_id": conversation,
                              "content": QUESTION.format(chat=chat), "tier": tier}))
    try:
        async with asyncio.timeout(300):
            while True:
                frame = json.loads(await ws.recv())
                at = now_us()
                kind = frame["type"]
                if kind == "run.started":
                    record["started_us"] = at
                    record["conversation"] = frame["conversation_id"]
                elif kind == "delta":
                    record["frames"].append([at, frame["seq"], frame["text"]])
                elif kind == "ad":
                    record["ad"] = True
                    return record
                elif kind == "done":
                    record["end"] = "done"
                    record["done_seq"] = frame.get("seq")
                    # the ad, when one was decided in time, follows done: wait for it briefly
                    try:
                        async with asyncio.timeout(1.0):
                            while True:
                                nxt = json.loads(await ws.recv())
                                if nxt["type"] == "ad":
                                    record["ad"] = True
                                    break
                    except TimeoutError:
                        pass
                    return record
                elif kind == "error":
                    record["end"] = f"error:{frame.get('code')}"
                    return record
    except TimeoutError:
        record["end"] = "timeout"
        return record


async def run_ws(args) -> list[dict]:
    chats = json.loads(open(args.chats).read())
    sockets = []
    for start in range(0, len(chats), 25):
        sockets += await asyncio.gather(*(_ws_open(args.url, c["session"]) for c in chats[start:start + 25]))
    await _ready()
    try:
        return list(await asyncio.gather(*(
            _ws_chat(ws, c.get("conversation"), args.tier) for ws, c in zip(sockets, chats, strict=True)
        )))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def _sse_chat(client, url: str, body: dict, headers: dict) -> dict:
    chat = uuid.uuid4().hex[:12]
    body = {**body, "messages": [{"role": "user", "content": QUESTION.format(chat=chat)}]}
    record: dict = {"chat": chat, "frames": [], "ad": False, "end": None, "sent_us": now_us()}
    try:
        async with client.stream("POST", url, json=body, headers=headers, timeout=300) as response:
            if response.status_code != 200:
                record["end"] = f"http:{response.status_code}"
                return record
            record["started_us"] = now_us()
            seq = 0
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    record["end"] = "done"
                    break
                data = json.loads(payload)
                for choice in data.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        seq += 1
                        record["frames"].append([now_us(), seq, text])
    except Exception as exc:  # the record says how it ended; the harness counts it as failed
        record["end"] = f"error:{type(exc).__name__}"
    return record


async def run_sse(args, url: str, body: dict, headers: dict) -> list[dict]:
    import httpx

    limits = httpx.Limits(max_connections=args.count + 10, max_keepalive_connections=args.count + 10)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        # one request first: the connection pool warm, as a web process's is
        await _sse_chat(client, url, body, headers)
        await _ready()
        return list(await asyncio.gather(*(_sse_chat(client, url, body, headers) for _ in range(args.count))))


async def _ready() -> None:
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ws", "direct", "api"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--chats")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--tier", default="llama-3.1-8b")
    parser.add_argument("--key", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.mode == "ws":
        records = asyncio.run(run_ws(args))
    elif args.mode == "direct":
        body = {"model": "bench", "max_tokens": 1024, "stream": True}
        records = asyncio.run(run_sse(args, args.url.rstrip("/") + "/chat/completions", body, {}))
    else:
        body = {"model": args.tier, "stream": True}
        records = asyncio.run(run_sse(args, args.url.rstrip("/") + "/api/v1/chat/completions", body,
                                      {"Authorization": f"Bearer {args.key}"}))
    with open(args.out, "w") as out:
        json.dump(records, out)


if __name__ == "__main__":
    main()
