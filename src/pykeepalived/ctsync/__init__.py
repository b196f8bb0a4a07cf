"""Connection state sync for the nftables data plane through Debian's conntrackd (docs/conntrack-sync.md).

`lvs_sync_daemon IFACE INSTANCE` asks keepalived for IPVS's sync daemon; on
the nftables data plane the connections live in conntrack, which conntrackd
replicates. The cores (`spec`, `conf`, `follower`) decide what runs, the
config written and the commands each VRRP transition calls for; `keeper`
runs conntrackd in the parent, `client` sends the commands from the VRRP
process, `guard` keeps mid-stream packets without an entry away from the
router's own TCP stack.
"""
