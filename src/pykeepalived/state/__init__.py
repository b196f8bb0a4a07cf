"""The daemon's one state model: what the parent knows of its children, for status, the API, metrics and SNMP."""
