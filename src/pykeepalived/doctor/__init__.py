"""`pykeepalived doctor`: the preflight that says, one line each, what on this host or in the pair's configs breaks.

Pure cores (`facts`, `host_rules`, `firewall`, `peer`, `report`) turn facts and
parsed configs into findings without I/O, so every rule is unit-tested with
hand-made facts; `gather` and `route_probe` are the thin shell that reads this
network namespace (sysctls, netlink, /proc, `nft -j`, a TCP probe); `command`
is the subcommand.
"""
