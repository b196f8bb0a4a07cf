"""HTTP_GET url `regex_stack START MAX` (issue 14): acted on by having no stack limit to raise.

keepalived 2.2.7 gives PCRE2's JIT a bigger match stack with regex_stack, so
that a regex that backtracks deeply over a large page still matches instead of
failing with a stack-limit error. Python's `re` keeps its backtracking state
on the heap with no fixed limit, so every pattern already gets what the
largest regex_stack would give. This test runs the config: a page of 400 KB
and a pattern that backtracks over all of it match with a tiny regex_stack.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.checkers import PlainServer

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SERVER = """\
import http.server, sys
BODY = b"ab" * 200000 + b"END"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""

CONF = """\
virtual_server 10.0.0.1 80 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {rs} 8080 {{
        HTTP_GET {{
            connect_timeout 5
            url {{
                path /
                regex "(a|b|ab)*END"
                regex_stack 1024 2048
            }}
        }}
    }}
}}
"""


def test_a_deep_backtracking_regex_matches_whatever_regex_stack_says(tmp_path: Path) -> None:
    with Lan(unique_prefix("rxs")) as lan:
        srv = lan.add_host("srv", 20)
        chk = lan.add_host("chk", 10)
        server = PlainServer(srv, SERVER, str(srv.ipv4.ip), "8080").start(wait_port=8080)
        try:
            conf = tmp_path / "keepalived.conf"
            conf.write_text(CONF.format(rs=srv.ipv4.ip))
            checked = chk.netns.run([sys.executable, "-m", "pykeepalived", "-t", "-f", str(conf)], check=False)
            assert checked.returncode == 0, checked.stderr
            assert "regex_stack" not in checked.stderr  # acted on: no "parsed but not acted on yet"
            proc = chk.netns.run([sys.executable, "-m", "pykeepalived", "probe", "-f", str(conf), "--json"],
                                 check=False, timeout_s=60.0)
            results = json.loads(proc.stdout)
            assert [r["ok"] for r in results] == [True], [r["reason"] for r in results]
        finally:
            server.kill()
