"""The running daemon: scripts, notifications, signals, the VRRP process."""
