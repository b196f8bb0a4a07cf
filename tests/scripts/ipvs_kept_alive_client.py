"""One kept-alive HTTP connection through the VIP, across the IPVS master's death.

argv: vip trigger out. Five requests on one connection, written to OUT as
{"before": [server, ...]}; then, once the file TRIGGER exists, one more request
on the same connection, and OUT.done gets {"before": [...], "after": server or
"error: ..."} (tests/netns/test_ipvs_lab.py).
"""

import json
import os
import socket
import sys
import time
vip, trigger, out = sys.argv[1:4]
sock = socket.create_connection((vip, 80), timeout=10)

def ask():
    sock.sendall(b"GET /whoami HTTP/1.1\r\nHost: lab\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the other end")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += sock.recv(4096)
    return body.decode().split()[0]

result = {"before": [ask() for _ in range(5)]}  # IPVS syncs a connection from its third packet on
with open(out + ".tmp", "w") as f:
    json.dump(result, f)
os.rename(out + ".tmp", out)
while not os.path.exists(trigger):
    time.sleep(0.05)
sock.settimeout(30)
try:
    result["after"] = ask()
except OSError as exc:
    result["after"] = f"error: {exc!r}"
with open(out + ".done.tmp", "w") as f:
    json.dump(result, f)
os.rename(out + ".done.tmp", out + ".done")
