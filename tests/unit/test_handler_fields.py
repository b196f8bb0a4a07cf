"""Schema handlers name the model field they fill; a misspelt name is caught before any config is parsed.

Handlers used to set fields by name with `setattr`, so `h.integer("priorty", ...)`
would have parsed fine and left a stray attribute that nothing reads. Now every
named handler is a `FieldHandler`, every block names its model class, and
`misnamed_fields` walks the whole keyword tree; `store` refuses an unknown name too.
"""

from __future__ import annotations

import pytest

from pykeepalived.config import handlers as h
from pykeepalived.errors import PyKeepalivedError
from pykeepalived.config.model import GlobalDefs, UrlSpec, VrrpInstance
from pykeepalived.config import read_config_text
from pykeepalived.config.registry import Block, FieldHandler, ModelFieldError, misnamed_fields, walk
from pykeepalived.config.schema import ROOT


def test_every_named_handler_sets_a_field_of_its_blocks_model() -> None:
    assert misnamed_fields(ROOT) == []
    named = [kw for _, kw in walk(ROOT) if isinstance(kw.on_line, FieldHandler) or isinstance(kw.on_list, FieldHandler)]
    assert len(named) > 200  # the check covers the declarative bulk of the schema, not a handful


def test_a_typo_planted_in_the_real_schema_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    instance = ROOT.keywords["vrrp_instance"].block
    assert instance is not None
    monkeypatch.setattr(instance.keywords["priority"], "on_line", h.integer("priorty", 1, 255))
    assert misnamed_fields(ROOT) == ["vrrp_instance > priority: VrrpInstance has no field 'priorty' "
                                     "(a schema handler names 'priorty')"]


def test_a_typo_in_a_settings_name_or_a_block_without_model_is_found() -> None:
    root = Block("top level")
    inner = Block("url", UrlSpec)
    inner.line("path", h.text("pth"), "typo")
    inner.line("regex", h.text("settings.regex"), "UrlSpec has no settings")
    root.nested("url", inner, lambda ctx, obj, seg: obj, "")
    root.line("x", h.text("x"), "no model")
    problems = misnamed_fields(root)
    assert len(problems) == 3
    assert any("'pth'" in p for p in problems) and any("'settings'" in p for p in problems)
    assert any("names no model class" in p for p in problems)


def test_store_refuses_a_field_the_model_does_not_have() -> None:
    inst = VrrpInstance("VI_1")
    with pytest.raises(ModelFieldError, match="VrrpInstance has no field 'priorty'") as caught:
        h.store(inst, "priorty", 100)
    assert isinstance(caught.value, PyKeepalivedError)
    assert not hasattr(inst, "priorty")
    h.store(inst, "priority", 100)
    assert inst.priority == 100
    g = GlobalDefs()
    h.store(g, "settings.vrrp_priority", -5)  # keywords nothing reads yet stay in settings
    assert g.settings == {"vrrp_priority": -5}


def test_typed_global_defs_fields_are_filled_by_the_parser() -> None:
    """The global_defs keywords code reads land in typed fields, not in `settings`."""
    result = read_config_text(
        "global_defs {\n"
        "  default_interface eth9\n  nftables my_table\n  v3_checksum_as_v2\n  vrrp_check_unicast_src\n"
        "  vrrp_lower_prio_no_advert\n  vrrp_higher_prio_send_advert off\n  vrrp_skip_check_adv_addr\n"
        "  checker_log_all_failures\n  pykeepalived_dataplane NFTables\n  lvs_flush\n  lvs_flush_onstop VS\n"
        "  lvs_timeouts tcp 10 udp 5\n  umask IWGRP|IWOTH\n  json_dump_file /run/x/\n  stats_dump_file /tmp/s\n"
        "  bfd_priority -5\n  enable_snmp_vrrp\n"
        "}\n"
    )
    assert not result.errors
    g = result.config.global_defs
    assert (g.default_interface, g.nftables, g.json_dump_file, g.stats_dump_file) == (
        "eth9", "my_table", "/run/x/", "/tmp/s")
    assert g.v3_checksum_as_v2 and g.vrrp_check_unicast_src and g.vrrp_lower_prio_no_advert
    assert not g.vrrp_higher_prio_send_advert
    assert g.vrrp_skip_check_adv_addr and g.checker_log_all_failures and g.lvs_flush
    assert g.pykeepalived_dataplane == "nftables"
    assert g.lvs_flush_on_stop == ["VS"] and g.lvs_timeouts == ["tcp", "10", "udp", "5"]
    assert g.umask == ["IWGRP|IWOTH"]
    assert g.bfd_priority == -5
    assert g.enable_snmp_vrrp and g.settings == {}  # snmp/settings.py reads it now
