"""Open a WebSocket to the live site and read the server's first frame (hello)."""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def main(url: str, origin: str) -> None:
    async with connect(url, origin=origin, open_timeout=10) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        print("handshake ok, first frame:", frame.get("type"))


asyncio.run(main(sys.argv[1], sys.argv[2]))
