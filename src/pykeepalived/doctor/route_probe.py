"""The route-back probe (guide 3.1.2): does a NAT real server answer through this router's private interface?

A TCP connect to the real server's port, from a public-side address of the
router (the service's VIP when held) and bound to the private interface
(SO_BINDTODEVICE). The kernel delivers a reply to that socket only if it
comes in on that interface, so the connect answers (SYN-ACK, or RST:
refused) exactly when the server's route back to a public address leads to
this router's private side, i.e. its default gateway is the floating VIP
there. A server whose gateway is another address (the other router's own
address, a separate gateway) sends its reply elsewhere: the connect times
out. The same connect from the router's own address on that LAN (answered
on the LAN itself) tells such a server from one that is down. Probes run
side by side; every socket is closed at the end.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Sequence

from .facts import IPAddress, ProbeOutcome, ProbeResult, ProbeTarget

DEFAULT_TIMEOUT_S = 2.0
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}
ANSWERED = {0, errno.ECONNREFUSED}


def _start(source: IPAddress, device: str, target: ProbeTarget) -> tuple[socket.socket | None, ProbeOutcome | None,
                                                                         str]:
    family = socket.AF_INET if target.real_server.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        sock.bind((str(source), 0))
        sock.setblocking(False)
        code = sock.connect_ex((str(target.real_server), target.port))
    except OSError as exc:
        sock.close()
        return None, "error", f"{exc.strerror or exc} (source {source}, device {device})"
    if code in ANSWERED:
        sock.close()
        return None, "answered", ""
    if code in UNREACHABLE:
        sock.close()
        return None, "unreachable", errno.errorcode.get(code, str(code))
    if code != errno.EINPROGRESS:
        sock.close()
        return None, "error", f"connect: {errno.errorcode.get(code, str(code))}"
    return sock, None, ""


def connect_batch(probes: Sequence[tuple[IPAddress, str, ProbeTarget]],
                  timeout_s: float) -> list[tuple[ProbeOutcome, str]]:
    """Connect every (source, device, target) at once; each one's outcome once it answers or the time is up."""
    results: list[tuple[ProbeOutcome, str] | None] = [None] * len(probes)
    sel = selectors.DefaultSelector()
    try:
        for i, (source, device, target) in enumerate(probes):
            sock, outcome, detail = _start(source, device, target)
            if sock is None:
                results[i] = (outcome or "error", detail)
            else:
                sel.register(sock, selectors.EVENT_WRITE, i)
        deadline = time.monotonic() + timeout_s
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                done = key.fileobj
                assert isinstance(done, socket.socket)
                code = done.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                sel.unregister(done)
                done.close()
                if code in ANSWERED:
                    results[key.data] = ("answered", "")
                elif code in UNREACHABLE:
                    results[key.data] = ("unreachable", errno.errorcode.get(code, str(code)))
                else:
                    results[key.data] = ("error", errno.errorcode.get(code, str(code)))
    finally:
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
    return [r if r is not None else ("timeout", f"no answer within {timeout_s:g} s") for r in results]


def run_probes(targets: Sequence[ProbeTarget], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[ProbeResult]:
    """Each target from its public-side source; those that time out again from the router's own LAN address."""
    first = connect_batch([(t.source, t.device, t) for t in targets], timeout_s)
    again = [i for i, (outcome, _) in enumerate(first) if outcome == "timeout" and targets[i].control is not None]
    controls = connect_batch([(targets[i].control, targets[i].device, targets[i]) for i in again  # type: ignore[misc]
                              ], timeout_s) if again else []
    control_of = {i: outcome for i, (outcome, _) in zip(again, controls, strict=True)}
    return [ProbeResult(t, outcome, control_of.get(i), detail)
            for i, (t, (outcome, detail)) in enumerate(zip(targets, first, strict=True))]
