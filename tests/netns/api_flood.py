"""Many slow clients on the API at once: half send a request's headers a byte at a time, half open an
event stream and never read. Run in a lab namespace by tests/netns/test_api_server.py and bench/api.py.

    python api_flood.py HOST PORT TOKEN CLIENTS SECONDS

Prints JSON: how many connected, how many the server closed (and how soon), how many got 503.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


async def slow_headers(host: str, port: int, hold_s: float, out: dict[str, list[float]]) -> None:
    """Slowloris: a byte of the request line every half second; note when (if) the server hangs up."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        out["refused"].append(0.0)
        return
    request = b"GET /api/v1/state HTTP/1.1\r\nHost: lab\r\nX-Slow: " + b"a" * 200
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(256), 0.5)
            except asyncio.TimeoutError:
                data = None
            if data is not None:  # an answer (503) or the end of the stream: the server dealt with us
                out["busy" if data.startswith(b"HTTP/1.1 503") else "closed"].append(time.monotonic() - start)
                return
            if time.monotonic() - start > hold_s:
                out["held"].append(time.monotonic() - start)
                return
    except OSError:
        out["closed"].append(time.monotonic() - start)
    finally:
        writer.close()


async def idle_stream(host: str, port: int, token: str, hold_s: float, out: dict[str, list[float]]) -> None:
    """An event stream opened and never read after its first bytes."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        out["refused"].append(0.0)
        return
    try:
        writer.write(f"GET /api/v1/stream HTTP/1.1\r\nHost: lab\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.read(64), 5)
        out["stream_busy" if first.startswith(b"HTTP/1.1 503") else "stream"].append(time.monotonic() - start)
        await asyncio.sleep(max(0.0, hold_s - (time.monotonic() - start)))
    except (OSError, asyncio.TimeoutError):
        out["stream_failed"].append(time.monotonic() - start)
    finally:
        writer.close()


async def main(host: str, port: int, token: str, clients: int, hold_s: float) -> dict[str, object]:
    out: dict[str, list[float]] = {k: [] for k in ("refused", "busy", "closed", "held", "stream", "stream_busy",
                                                   "stream_failed")}
    tasks = []
    for i in range(clients):
        if i % 2:
            tasks.append(asyncio.create_task(idle_stream(host, port, token, hold_s, out)))
        else:
            tasks.append(asyncio.create_task(slow_headers(host, port, hold_s, out)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks, return_exceptions=True)
    return {k: len(v) for k, v in out.items()} | {"closed_max_s": max(out["closed"], default=0.0)}


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    h, p, t, n, s = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(h, int(p), t, int(n), float(s)))))
