"""pykeepalived: keepalived's job, in Python, compatible with keepalived."""

__version__ = "0.1.0"
