"""One GET through the VIP every EVERY_S seconds, one line per attempt, until killed.

argv: vip every_s. Each line is "<monotonic time> ok <server>" or "<time> fail <why>"
(tests/netns/test_dataplane_faults.py).
"""

import socket
import sys
import time

vip, every_s = sys.argv[1], float(sys.argv[2])
while True:
    started = time.monotonic()
    try:
        with socket.create_connection((vip, 80), timeout=0.3) as s:
            s.settimeout(0.3)
            s.sendall(b"GET /whoami HTTP/1.0\r\nHost: lab\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        body = data.split(b"\r\n\r\n", 1)[-1].decode().split()
        line = f"{started:.3f} ok {body[0] if body else '?'}" if data.startswith(b"HTTP/1.1 200") \
            else f"{started:.3f} fail status"
    except OSError as exc:
        line = f"{started:.3f} fail {type(exc).__name__}"
    print(line, flush=True)
    time.sleep(max(0.0, every_s - (time.monotonic() - started)))
