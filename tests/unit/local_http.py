"""A throw-away HTTP server on 127.0.0.1 for the genhash tests, and the page it serves.

test_genhash.py and test_cli_genhash.py each wrote the same handler (one
page, every request noted, no access log) and the same start and shutdown
of the server around it; each now says only what its page and notes are.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and `body`, and appends `note()` of the request to `seen`.

    Subclasses set `body`, `seen` (a list of their own) and `note`; `dated = False`
    leaves out the Server and Date headers, so that responses compare byte for byte.
    """

    body: ClassVar[bytes] = b""
    dated: ClassVar[bool] = True
    seen: ClassVar[list[str]]

    def note(self) -> str:
        raise NotImplementedError

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.note())
        if self.dated:
            self.send_response(200)
        else:
            self.send_response_only(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def serve_local(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve `handler` on a free loopback port in a thread; yields the port, shuts the server down after."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
