"""keepalived's command line, piece by piece, for `cli.py`.

Each module holds one part of the drop-in promise (flags, syslog facility,
`-t` exit statuses, `--signum`, genhash's own flags, quiet output on a closed
pipe) so that `cli.py` stays the one place that dispatches, and a command only
imports what it needs (start-up time is measured by bench/startup.py).
"""
