"""The HTTP API, /metrics and the status page, served by the parent (never by the VRRP process)."""
