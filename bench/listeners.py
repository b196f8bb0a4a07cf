"""Thousands of real servers in one process: the far end of bench/checks.py.

Listens on one address on many TCP ports ("tcp" ports: accept and close) and
many HTTP ports ("http" ports: read the request, answer `HTTP/1.0 200 OK` with
a small body, close), so that one namespace can stand in for 6,000 real
servers. It is a bare epoll loop rather than asyncio streams on purpose: the
benchmark measures the checker, and the fewer cycles the servers take per
connection the less they compete with it for the machine's two cores.

Commands, one per line on stdin; every answer is one JSON line on stdout:

    kill PORT...    close these listening sockets (a server dies: connects get RST)
                    -> {"cmd": "kill", "t": {"PORT": wall-clock time it was closed, ...}}
    open PORT...    listen on them again
                    -> {"cmd": "open", "t": {"PORT": wall-clock time it listened again, ...}}
    stats           -> {"cmd": "stats", "t": now, "tcp": accepted, "http": answered, "http_bad": ...}

At start it prints {"cmd": "ready", ...} once every socket listens; EOF on
stdin ends it. Wall-clock times (time.time()) because the checkers' logs carry
wall-clock timestamps.

    python bench/listeners.py ADDRESS --tcp 20000-24999 --http 30000-30999
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import socket
import sys
import time

BODY = b"ok\n"
RESPONSE = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(BODY), BODY))
ACCEPTS_PER_WAKE = 64
REQUEST_LIMIT = 8192
STALE_HTTP_S = 10.0  # an HTTP client that has sent no full request by then is dropped


def port_range(text: str) -> list[int]:
    """"20000-24999" or "80" or "" -> the ports."""
    if not text:
        return []
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def raise_nofile(want: int) -> None:
    """6,000 listening sockets plus connections do not fit the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class Listeners:
    """Listening sockets by port, the HTTP connections being answered, and counters."""

    def __init__(self, address: str, tcp_ports: list[int], http_ports: list[int]) -> None:
        self.address = address
        self.family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.kind = {p: "tcp" for p in tcp_ports} | {p: "http" for p in http_ports}
        self.ep = select.epoll()
        self.listening: dict[int, socket.socket] = {}  # fd -> listening socket
        self.by_port: dict[int, socket.socket] = {}
        self.conns: dict[int, tuple[socket.socket, bytearray, float]] = {}  # fd -> (sock, request so far, since)
        self.tcp_accepted = 0
        self.http_answered = 0
        self.http_bad = 0

    def listen(self, port: int) -> None:
        if port in self.by_port:
            return
        s = socket.socket(self.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.address, port))
        s.listen(1024)
        self.listening[s.fileno()] = s
        self.by_port[port] = s
        self.ep.register(s.fileno(), select.EPOLLIN)

    def close(self, port: int) -> None:
        s = self.by_port.pop(port, None)
        if s is None:
            return
        self.listening.pop(s.fileno(), None)
        self.ep.unregister(s.fileno())
        s.close()  # queued, not yet accepted connections are reset with it

    def accept(self, s: socket.socket) -> None:
        port = s.getsockname()[1]
        http = self.kind.get(port) == "http"
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _ = s.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    print(f"listeners: accept on {port}: {exc}", file=sys.stderr, flush=True)
                return
            if not http:
                self.tcp_accepted += 1
                conn.close()
                continue
            conn.setblocking(False)
            self.conns[conn.fileno()] = (conn, bytearray(), time.monotonic())
            self.ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)

    def serve(self, fd: int) -> None:
        """Read the request; once its header is complete, answer and close (FIN: nothing left unread)."""
        conn, buf, _ = self.conns[fd]
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            buf += data
            if b"\r\n\r\n" not in buf and len(buf) < REQUEST_LIMIT:
                return
            try:
                conn.send(RESPONSE)  # far smaller than any socket buffer: all of it or an error
                self.http_answered += 1
            except OSError:
                self.http_bad += 1
        else:
            self.http_bad += 1
        self.drop(fd)

    def drop(self, fd: int) -> None:
        conn, _, _ = self.conns.pop(fd)
        try:
            self.ep.unregister(fd)
        except OSError:
            pass
        conn.close()

    def drop_stale(self) -> None:
        limit = time.monotonic() - STALE_HTTP_S
        for fd in [fd for fd, (_, _, since) in self.conns.items() if since < limit]:
            self.http_bad += 1
            self.drop(fd)


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def command(ls: Listeners, line: str) -> None:
    words = line.split()
    if not words:
        return
    verb, ports = words[0], [int(w) for w in words[1:]]
    if verb == "kill":
        times = {}
        for port in ports:
            ls.close(port)
            times[str(port)] = time.time()
        emit({"cmd": "kill", "t": times})
    elif verb == "open":
        times = {}
        for port in ports:
            ls.listen(port)
            times[str(port)] = time.time()
        emit({"cmd": "open", "t": times})
    elif verb == "stats":
        emit({"cmd": "stats", "t": time.time(), "tcp": ls.tcp_accepted, "http": ls.http_answered,
              "http_bad": ls.http_bad, "listening": len(ls.by_port), "open_conns": len(ls.conns)})
    else:
        emit({"cmd": "error", "error": f"unknown command {verb!r}"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="many TCP and HTTP real servers in one process")
    ap.add_argument("address")
    ap.add_argument("--tcp", default="", help="port range of accept-and-close servers, e.g. 20000-24999")
    ap.add_argument("--http", default="", help="port range of HTTP servers, e.g. 30000-30999")
    args = ap.parse_args(argv)
    tcp_ports, http_ports = port_range(args.tcp), port_range(args.http)
    raise_nofile(len(tcp_ports) + len(http_ports) + 4096)
    ls = Listeners(args.address, tcp_ports, http_ports)
    for port in tcp_ports + http_ports:
        ls.listen(port)
    stdin_fd = sys.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    ls.ep.register(stdin_fd, select.EPOLLIN)
    emit({"cmd": "ready", "t": time.time(), "listening": len(ls.by_port), "pid": os.getpid()})
    pending = b""
    next_sweep = time.monotonic() + STALE_HTTP_S
    while True:
        for fd, _mask in ls.ep.poll(1.0, 1024):
            if fd == stdin_fd:
                try:
                    chunk = os.read(stdin_fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return 0
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    command(ls, line.decode())
            elif fd in ls.listening:
                ls.accept(ls.listening[fd])
            elif fd in ls.conns:
                ls.serve(fd)
        if time.monotonic() >= next_sweep:
            ls.drop_stale()
            next_sweep = time.monotonic() + STALE_HTTP_S


if __name__ == "__main__":
    sys.exit(main())
