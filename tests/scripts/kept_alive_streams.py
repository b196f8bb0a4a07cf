"""Long-lived connections through a VIP: each a kept-alive HTTP connection asking GET /whoami every 100 ms.

argv: vip port count settle_s. Opens COUNT connections (one thread each; a
request waits for the previous answer, so a stalled connection retransmits
rather than queues). Prints `ready` once every connection has had an answer.
Then reads stdin: at the line `mark` (the test saw the failover) it starts
counting answers anew, and ends as soon as every connection has either failed
or had 3 answers since the mark, or SETTLE_S seconds after the mark. Prints
one JSON line: a list, per connection, of {"servers": [names in order of
first answer], "answers": n, "after_mark": n, "error": text or null,
"longest_gap_s": s} (tests/netns/test_flow_failover.py).
"""

import json
import socket
import sys
import threading
import time

vip, port, count, settle_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ANSWERS_AFTER_MARK = 3
lock = threading.Lock()
marked = threading.Event()
stopping = threading.Event()
states = [{"servers": [], "answers": 0, "after_mark": 0, "error": None, "longest_gap_s": 0.0} for _ in range(count)]


def ask(sock):
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
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed mid-answer")
        body += chunk
    return body.decode().split()[0]


def stream(state):
    try:
        sock = socket.create_connection((vip, port), timeout=5)
        sock.settimeout(settle_s + 30)  # the failover's gap and TCP's backed-off retransmits fit in this
        last = time.monotonic()
        while not stopping.is_set():
            name = ask(sock)
            now = time.monotonic()
            with lock:
                if name not in state["servers"]:
                    state["servers"].append(name)
                state["answers"] += 1
                state["after_mark"] += marked.is_set()
                state["longest_gap_s"] = max(state["longest_gap_s"], round(now - last, 3))
            last = now
            time.sleep(0.1)
        sock.close()
    except (OSError, ValueError, IndexError) as exc:
        with lock:
            state["error"] = repr(exc)


def settled():
    with lock:
        return all(s["error"] is not None or s["after_mark"] >= ANSWERS_AFTER_MARK for s in states)


threads = [threading.Thread(target=stream, args=(s,), daemon=True) for s in states]
for t in threads:
    t.start()
deadline = time.monotonic() + 10
while not all(s["answers"] or s["error"] for s in states) and time.monotonic() < deadline:
    time.sleep(0.05)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "mark":
        with lock:
            for s in states:
                s["after_mark"] = 0
            marked.set()
        break
end = time.monotonic() + settle_s
while not settled() and time.monotonic() < end:
    time.sleep(0.05)
stopping.set()
with lock:
    print(json.dumps(states), flush=True)
