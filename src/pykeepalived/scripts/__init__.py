"""Running the scripts a configuration names: track scripts, notify scripts and
MISC_CHECK programs (`runner.py`), and delivering state changes to notify scripts
and FIFOs (`notify.py`).

Both services use it: the VRRP shell for track and notify scripts, the checker
shell for MISC_CHECK and real-server notifies. It sits below them, above
`config/` (which vets the scripts, `config/script_rules.py`) and `host/`.
"""
