"""Adapters to the machine: files, interfaces, users. The shells use these; the cores never do."""
