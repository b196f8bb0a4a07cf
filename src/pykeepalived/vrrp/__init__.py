"""VRRP: the wire codec, the per-instance state machine, sync groups and the asyncio service that drives them."""
