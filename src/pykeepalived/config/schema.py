"""The whole keyword tree of keepalived.conf, assembled from the per-area schema modules."""

from __future__ import annotations

from . import schema_bgp, schema_check, schema_global, schema_vrrp, support
from .model import KeepalivedConfig
from .registry import Block


def build_root() -> Block:
    """A fresh root block holding every top-level keyword."""
    root = Block("top level", KeepalivedConfig)
    schema_global.register(root)
    schema_vrrp.register(root)
    schema_check.register(root)
    schema_bgp.register(root)
    support.mark_acted(root)
    return root


ROOT = build_root()
