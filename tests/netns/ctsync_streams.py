"""Long-lived connections through a VIP: N HTTP/1.1 keep-alive sockets, one request every 100 ms each.

Run inside the client's namespace: `python ctsync_streams.py HOST PORT N STOPFILE OUTFILE`. Every
answer is read on the SAME socket it was asked on; a socket that breaks is never reopened. It
writes OUTFILE.ready once every socket has had its first answer, and, once STOPFILE exists,
OUTFILE: per connection the answers, the servers that answered (in order), the longest gap
between answers, the wall time of the last answer and the error that ended it (None: alive).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

READ_TIMEOUT_S = 20.0  # longer than a failover with TCP's retransmission back-off


async def _stream(host: str, port: int, stop: asyncio.Event, rec: dict[str, Any], first: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except (OSError, asyncio.TimeoutError) as exc:
        rec["error"] = f"connect: {exc!r}"
        first.set()
        return
    request = f"GET /whoami HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    last = time.monotonic()
    while not stop.is_set():
        try:
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"[:200]
            first.set()
            return
        now = time.monotonic()
        rec["max_gap_s"] = max(rec["max_gap_s"], now - last)
        last = now
        rec["answers"] += 1
        rec["last_answer"] = time.time()
        first.set()
        name = body.split()[0].decode() if body.split() else "?"
        if not rec["servers"] or rec["servers"][-1] != name:
            rec["servers"].append(name)
        await asyncio.sleep(0.1)
    writer.close()


async def main(host: str, port: int, count: int, stop_file: str, out_file: str) -> None:
    stop = asyncio.Event()
    records: list[dict[str, Any]] = [{"answers": 0, "servers": [], "max_gap_s": 0.0, "last_answer": None,
                                      "error": None} for _ in range(count)]
    firsts = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(_stream(host, port, stop, rec, ev)) for rec, ev in zip(records, firsts)]
    await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in firsts)), 10)
    with open(out_file + ".ready", "w"):
        pass
    while not os.path.exists(stop_file):
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    with open(out_file, "w") as f:
        json.dump({"stopped": time.time(), "streams": records}, f)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]))
