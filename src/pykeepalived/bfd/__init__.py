"""BFD (RFC 5880/5881, single hop, UDP 3784) as keepalived 2.2.7's bfd process runs it.

`packet.py` and `session.py` are sans-IO cores (the control packet codec and
one session's state machine); `events.py` carries session state from the BFD
process to the VRRP and checker processes; `service.py` runs the sessions on
asyncio sockets; `process.py` is the BFD child process itself. docs/bfd.md
says why pykeepalived runs its own sessions rather than FRR's bfdd.
"""
