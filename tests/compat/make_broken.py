"""Writes the broken-config corpus: one valid base config and one mistake per file.

Run it to regenerate broken/*.conf after changing a case; the files are committed
so that a reader can open each one.
"""

from pathlib import Path

BASE = """global_defs {
  router_id test
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 6
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.0.0.1 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 3
    }
  }
}
"""

SECOND_VI = """vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 52
  priority 100
  virtual_ipaddress {
    192.0.2.101/24
  }
}
"""

# name -> (text to replace, replacement); replacing "" appends to the end
CASES = {
    "unknown_global_keyword": ("  router_id test\n", "  router_id test\n  router_idd other\n"),
    "unknown_instance_keyword": ("  priority 150\n", "  priority 150\n  virtual_router_di 5\n"),
    "unknown_root_keyword": ("", "vrrp_instanse VI_9 {\n  interface eth0\n}\n"),
    "missing_value_vrid": ("  virtual_router_id 51\n", "  virtual_router_id\n"),
    "priority_too_high": ("priority 150", "priority 300"),
    "priority_zero": ("priority 150", "priority 0"),
    "vrid_too_high": ("virtual_router_id 51", "virtual_router_id 256"),
    "vrid_zero": ("virtual_router_id 51", "virtual_router_id 0"),
    "advert_int_zero": ("advert_int 1", "advert_int 0"),
    "advert_int_word": ("advert_int 1", "advert_int fast"),
    "vip_bad_octet": ("192.0.2.100/24\n  }", "192.0.2.300/24\n  }"),
    "vip_not_an_address": ("192.0.2.100/24\n  }", "vip.example\n  }"),
    "missing_closing_brace": ("      connect_timeout 3\n    }\n  }\n}\n", "      connect_timeout 3\n    }\n  }\n"),
    "extra_closing_brace": ("", "}\n"),
    "duplicate_vrid": ("", SECOND_VI.replace("virtual_router_id 52", "virtual_router_id 51")),
    "interface_missing": ("interface eth0", "interface eth9"),
    "track_interface_missing": ("  advert_int 1\n", "  advert_int 1\n  track_interface {\n    eth7\n  }\n"),
    "track_script_unknown": ("  advert_int 1\n", "  advert_int 1\n  track_script {\n    chk_nothing\n  }\n"),
    "vrrp_script_without_script": ("", "vrrp_script chk_x {\n  interval 2\n}\n"),
    "state_unknown": ("state MASTER", "state PRIMARY"),
    "ah_with_state_master": ("auth_type PASS", "auth_type AH"),
    "auth_type_unknown": ("auth_type PASS", "auth_type MD5"),
    "no_vip": ("  virtual_ipaddress {\n    192.0.2.100/24\n  }\n", ""),
    "no_vrid": ("  virtual_router_id 51\n", ""),
    "version_four": ("  advert_int 1\n", "  advert_int 1\n  version 4\n"),
    "lb_algo_unknown": ("lb_algo rr", "lb_algo fastest"),
    "lb_kind_unknown": ("lb_kind NAT", "lb_kind BRIDGE"),
    "protocol_unknown": ("protocol TCP", "protocol ICMP"),
    "no_protocol": ("  protocol TCP\n", ""),
    "no_lb_algo": ("  lb_algo rr\n", ""),
    "no_lb_kind": ("  lb_kind NAT\n", ""),
    "vs_without_real_servers": (
        "  real_server 10.0.0.1 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n",
        "",
    ),
    "duplicate_real_server": (
        "  real_server 10.0.0.1 80 {\n",
        "  real_server 10.0.0.1 80 {\n    weight 2\n  }\n  real_server 10.0.0.1 80 {\n",
    ),
    "dr_port_mismatch": (
        "lb_kind NAT\n  protocol TCP\n  real_server 10.0.0.1 80",
        "lb_kind DR\n  protocol TCP\n  real_server 10.0.0.1 8080",
    ),
    "fwmark_with_protocol": ("virtual_server 192.0.2.100 80 {", "virtual_server fwmark 7 {"),
    "quorum_above_weight": ("  delay_loop 6\n", "  delay_loop 6\n  quorum 5\n"),
    "real_server_bad_address": ("real_server 10.0.0.1 80", "real_server 10.0.0.999 80"),
    "virtual_server_bad_address": ("virtual_server 192.0.2.100 80", "virtual_server 192.0.2 80"),
    "unknown_checker_keyword": ("      connect_timeout 3\n", "      connect_timeout 3\n      connect_tiemout 4\n"),
    "connect_port_out_of_range": ("      connect_timeout 3\n", "      connect_timeout 3\n      connect_port 70000\n"),
    "weight_negative": ("    weight 1\n", "    weight -1\n"),
    "sync_group_unknown_member": ("", "vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_7\n  }\n}\n"),
    "sync_group_single_member": ("", "vrrp_sync_group G1 {\n  group {\n    VI_1\n  }\n}\n"),
    "vip_dev_missing": ("192.0.2.100/24\n  }", "192.0.2.100/24 dev eth5\n  }"),
    "virtual_route_without_dev": ("  advert_int 1\n",
                                  "  advert_int 1\n  virtual_routes {\n    198.51.100.0/24 via 192.0.2.1\n  }\n"),
    "virtual_rule_without_preference": ("  advert_int 1\n",
                                        "  advert_int 1\n  virtual_rules {\n    from 192.0.2.0/24 table 100\n  }\n"),
    "unicast_peer_bad_address": ("  advert_int 1\n", "  advert_int 1\n  unicast_peer {\n    192.0.2.500\n  }\n"),
    "delay_loop_word": ("delay_loop 6", "delay_loop often"),
    "nopreempt_with_owner_priority": ("priority 150", "priority 255\n  nopreempt"),
    "vip_family_mixed": ("192.0.2.100/24\n  }", "192.0.2.100/24\n    2001:db8::100/64\n  }"),
    "unbalanced_quote": ("router_id test", 'router_id "test'),
}


def main() -> None:
    out = Path(__file__).with_name("broken")
    out.mkdir(exist_ok=True)
    for old in out.glob("*.conf"):
        old.unlink()
    for name, (old, new) in CASES.items():
        if old:
            if old not in BASE:
                raise SystemExit(f"{name}: text to replace not in the base config")
            text = BASE.replace(old, new, 1)
        else:
            text = BASE + new
        (out / f"{name}.conf").write_text(f"! broken config: {name}\n" + text)
    (out.with_name("valid_base.conf")).write_text(BASE)


if __name__ == "__main__":
    main()
