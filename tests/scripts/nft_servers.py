"""Real servers for the nftables scripts, in threads of the script's own process.

`listen(address, hold=...)` answers each connection with its address and closes
it, or (hold) keeps it open so that it stays established.
"""

import socket
import threading

held = []


def listen(address, *, hold):
    srv = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((address, 80))
    srv.listen(64)
    def loop():
        while True:
            conn, _ = srv.accept()
            try:  # a TCP_CHECK resets its connection, maybe before the answer goes out
                conn.sendall(address.encode() + b"\n")
            except OSError:
                conn.close()
                continue
            held.append(conn) if hold else conn.close()
    threading.Thread(target=loop, daemon=True).start()
