"""A recording SMTP server for tests: answers like a mail server and writes each mail as one JSON line.

Usage: mail_sink.py ADDRESS PORT OUTFILE. Every command line of a session is
kept verbatim (verbs as the client wrote them), and the DATA text up to the
terminating dot, so that a test can compare what two daemons send, byte for
byte. Only the standard library: it runs in any namespace the test made.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: str) -> None:
    commands: list[str] = []
    data: list[str] = []
    writer.write(b"220 sink ESMTP ready\r\n")
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                while True:
                    body = (await reader.readline()).decode("utf-8", "replace")
                    if body in (".\r\n", ".\n", ""):
                        break
                    data.append(body)
                writer.write(b"250 queued\r\n")
                with open(out, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"commands": commands, "data": "".join(data)}) + "\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
    finally:
        writer.close()


async def _main(address: str, port: int, out: str) -> None:
    server = await asyncio.start_server(lambda r, w: _session(r, w, out), address, port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
