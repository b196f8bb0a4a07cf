"""The runtime API and the state document name virtual and real servers alike.

The runtime API keeps its overrides under the names it derives from the
config (state/runtime_names.py); the checker's state view derives its names
from the data plane's table (check/state_view.py) and looks the overrides up
by them. If the two spellings drifted, a drained server would not show as
drained. Every kind of virtual server is checked: address, fwmark, group,
IPv6, and a real server without a port.
"""

from __future__ import annotations

from pykeepalived.check.state_view import rs_state_name, vs_state_name
from pykeepalived.config import read_config_text
from pykeepalived.lvs.plan import configured_services, real_server_name as internal_rs_name
from pykeepalived.state.runtime_names import real_server_name, virtual_server_name

CONFIG = """
virtual_server_group web { 192.0.2.20 80 }
virtual_server 192.0.2.10 80 { protocol TCP real_server 10.0.0.2 80 { } }
virtual_server 2001:db8::10 443 { protocol TCP real_server 2001:db8::2 443 { } }
virtual_server fwmark 7 { protocol TCP real_server 10.0.0.3 { } }
virtual_server group web { protocol TCP real_server 10.0.0.4 80 { } }
virtual_server 192.0.2.11 53 { protocol UDP real_server 10.0.0.5 53 { } }
"""


def test_every_kind_of_server_has_one_name() -> None:
    result = read_config_text(CONFIG)
    services = configured_services(result.config)
    assert len(services) == 5
    for vs, table_entry in services:
        assert virtual_server_name(vs) == vs_state_name(table_entry)
        for rs in vs.real_servers:
            assert real_server_name(rs) == rs_state_name(internal_rs_name(vs, rs))
