"""The BGP tier (issue 19, docs/ecmp.md): announce VIPs to upstream routers while they are served.

pykeepalived does not speak BGP itself: FRR's bgpd does (`bgpd -Z -p 0`, a
child of the checker process). The cores here say what bgpd's configuration
is (frr_conf.py), which addresses should be announced now (announce.py) and
how commands travel over bgpd's vty socket (vty.py); speaker.py runs bgpd and
holds the socket.
"""
