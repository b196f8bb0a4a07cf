"""A timed HTTP prober: which requests through a VIP failed, and the longest stretch without an answer.

wrk counts failures but says nothing about when they happened; a hand-over
shows up as a gap. This prober runs in the client's namespace (`python -m
pykeepalived.lab.request_probe URL SECONDS`), with a few threads that each
send one request on a new connection (`Connection: close`) after another
and one thread that keeps a single connection alive, re-opening it when it
breaks (a break is a failure). Each request has wrk's timeout (2 s), so
a SYN the kernel retries after 1 s is a late answer (it shows in the gap),
not a failure. It prints one JSON document at the end (`report`):
per style the number of requests, the failures (time and reason) and the
longest gap between two answers, all on CLOCK_MONOTONIC, which every
namespace shares, so a test can put the gap beside the moment it stopped
a router.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REQUEST_TIMEOUT_S = 2.0  # wrk's --timeout in the labs: a SYN retried after 1 s is a late answer, not a failure
PAUSE_S = 0.005  # between one thread's requests: a steady stream that leaves the two cores room


@dataclass
class Tally:
    """One style's results (each thread appends under the lock)."""

    answers: list[float] = field(default_factory=list)  # monotonic time of each good answer
    failures: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> None:
        with self.lock:
            self.answers.append(time.monotonic())

    def failed(self, why: str) -> None:
        with self.lock:
            self.failures.append((time.monotonic(), why))


def longest_gap(times: list[float], start: float, end: float) -> tuple[float, float]:
    """(the longest time without an answer between `start` and `end`, when it began)."""
    edges = [start, *sorted(t for t in times if start <= t <= end), end]
    gap, at = 0.0, start
    for a, b in zip(edges, edges[1:]):
        if b - a > gap:
            gap, at = b - a, a
    return gap, at


def _read_answer(sock: socket.socket) -> bytes:
    """One HTTP/1.1 answer with a Content-Length body (nginx's), or what came before EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _good(answer: bytes) -> bool:
    return answer.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2"))


def _request(host: str, path: str, close: bool) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def new_connections(host: str, port: int, path: str, tally: Tally, stop: threading.Event) -> None:
    """One request per connection, until `stop`."""
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S) as sock:
                sock.sendall(_request(host, path, close=True))
                answer = _read_answer(sock)
            if _good(answer):
                tally.ok()
            else:
                tally.failed(f"answer {answer[:40]!r}")
        except OSError as exc:
            tally.failed(f"{type(exc).__name__}: {exc}")
        time.sleep(PAUSE_S)


def keep_alive(host: str, port: int, path: str, tally: Tally, stop: threading.Event) -> None:
    """Requests on one connection, a new one only after a failure, until `stop`.

    A kept connection the server closed in order (nginx's keepalive_requests:
    EOF before any byte of the answer) is re-opened and the request sent again,
    as HTTP clients do; a reset or a timeout is a failure.
    """
    sock: socket.socket | None = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S)
            sock.sendall(_request(host, path, close=False))
            answer = _read_answer(sock)
            if not answer:
                sock.close()
                sock = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S)
                sock.sendall(_request(host, path, close=False))
                answer = _read_answer(sock)
            if _good(answer):
                tally.ok()
            else:
                tally.failed(f"answer {answer[:40]!r}")
                sock.close()
                sock = None
        except OSError as exc:
            tally.failed(f"{type(exc).__name__}: {exc}")
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(PAUSE_S)
    if sock is not None:
        sock.close()


def report(tallies: dict[str, Tally], start: float, end: float) -> dict[str, Any]:
    out: dict[str, Any] = {"start": start, "end": end}
    for style, tally in tallies.items():
        gap, at = longest_gap(tally.answers, start, end)
        out[style] = {"requests": len(tally.answers) + len(tally.failures), "failed": len(tally.failures),
                      "failures": [[round(t, 3), why] for t, why in tally.failures[:50]],
                      "longest_gap_s": round(gap, 3), "gap_at": round(at, 3)}
    return out


def probe(url: str, seconds: float, new_conn_threads: int = 3) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "", parts.port or 80, parts.path or "/"
    tallies = {"new_conn": Tally(), "keepalive": Tally()}
    stop = threading.Event()
    threads = [threading.Thread(target=new_connections, args=(host, port, path, tallies["new_conn"], stop))
               for _ in range(new_conn_threads)]
    threads.append(threading.Thread(target=keep_alive, args=(host, port, path, tallies["keepalive"], stop)))
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(REQUEST_TIMEOUT_S * 4)
    return report(tallies, start, time.monotonic())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m pykeepalived.lab.request_probe URL SECONDS", file=sys.stderr)
        return 2
    print(json.dumps(probe(argv[0], float(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
