"""The status page in Debian's chromium against the real daemon in the NAT lab.

Each router runs with `--api unix:<workdir>/<router>.api.sock`; a proxy in the
test process forwards a loopback port to that socket (a unix socket is not
bound to a namespace, and the proxy runs as root, which the socket requires),
so the browser reaches each router's page without a token and without any
traffic leaving loopback. The test needs the state feed (the children's parts
in the parent's StateStore) and, for the drain, the runtime routes: until
they are in the branch it skips with the reason, from what the API answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import lvs_lab, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import PUBLIC_INSTANCE, VIP, LvsLab

from ..browser.harness import ConsoleLog, ThreadedApi, Proxy, chromium_context, skip_unless_browser
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

SEEN_S = 10.0  # a change in the lab is on the page within this (checker retries, 3 adverts, a shared machine)


def _socket(router: lvs_lab.Router) -> Path:
    return router.dir / f"{router.name}.api.sock"


def _has_flag(flag: str) -> bool:
    """Whether this pykeepalived's command line knows `flag` (`--help` lists it)."""
    out = subprocess.run([sys.executable, "-m", "pykeepalived", "--help"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    return flag in out


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LvsLab]:
    skip_unless_browser()
    plain_argv = lvs_lab.Router.argv

    runtime = ["--api-runtime"] if _has_flag("--api-runtime") else []  # the runtime routes, once they exist

    def with_api(router: lvs_lab.Router) -> list[str]:
        return [*plain_argv(router), "--api", f"unix:{_socket(router)}", *runtime]

    monkeypatch.setattr(lvs_lab.Router, "argv", with_api)
    lab = LvsLab("nat", prefix=unique_prefix("lvsp"), name="lvs-page", workdir=tmp_path / "lab")
    try:
        lab.up()
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name} ({router.log_path}) =====\n{router.log()[-4000:]}")
        lab.close()


@pytest.fixture
def proxies(lab: LvsLab) -> Iterator[dict[str, Proxy]]:
    loop = ThreadedApi(None)
    loop.start()
    made: dict[str, Proxy] = {}
    try:
        for name, router in lab.routers.items():
            wait_until(_socket(router).exists, 10.0, what=f"{name}'s API socket")
            made[name] = Proxy(loop, path=str(_socket(router)))
            made[name].start()
        yield made
    finally:
        for proxy in made.values():
            proxy.stop()
        loop.stop()


def _get_state(proxy: Proxy) -> dict[str, Any]:
    with urllib.request.urlopen(proxy.url + "api/v1/state", timeout=5) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SEEN_S
    while not cond():
        assert time.monotonic() < deadline, f"not within {SEEN_S} s: {what}"
        time.sleep(0.1)


def test_page_shows_the_lab_follows_a_failover_and_drains_a_real_server(
        lab: LvsLab, proxies: dict[str, Proxy]) -> None:
    doc = _get_state(proxies["router1"])
    if "vrrp" not in doc or "checker" not in doc:
        pytest.skip(f"the parent's state has no VRRP or checker part yet (keys {sorted(doc)}): "
                    "the children's state feed is not in this branch")
    web = next(vs for vs in doc["checker"]["virtual_servers"] if vs.get("address") == str(VIP))
    vs_name = web["name"]
    # the lab's real server names (rs1, ...) -> the state's names of them (ADDRESS:PORT)
    by_address = {rs["address"]: rs["name"] for rs in web["real_servers"]}
    rs_names = {rs.name: by_address[str(rs.address)] for rs in lab.real_servers}
    router1_address = str(lab.routers["router1"].public.ipv4.ip)

    with chromium_context() as browser:
        pages = {name: browser.new_page() for name in proxies}
        consoles = {name: ConsoleLog(page) for name, page in pages.items()}
        for name, page in pages.items():
            page.goto(proxies[name].url)
            page.wait_for_selector("#conn.live", timeout=SEEN_S * 1000)
        p1, p2 = pages["router1"], pages["router2"]
        inst = f'[data-instance="{PUBLIC_INSTANCE}"] [data-field="state"]'
        p1.locator(inst + ".st-MASTER").wait_for(timeout=SEEN_S * 1000)
        p2.locator(inst + ".st-BACKUP").wait_for(timeout=SEEN_S * 1000)
        assert router1_address in p2.locator(f'[data-instance="{PUBLIC_INSTANCE}"] [data-field="master"]').inner_text()
        for rs in rs_names.values():
            p1.locator(f'[data-vs="{vs_name}"] [data-rs="{rs}"][data-health="up"]').wait_for(timeout=SEEN_S * 1000)

        lab.stop_real_server("rs2")
        p1.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names["rs2"]}"][data-health="down"]').wait_for(
            timeout=SEEN_S * 1000)
        lab.start_real_server("rs2")

        assert consoles["router1"].errors == [], consoles["router1"].errors
        lab.kill_router("router1")  # its page says so; router2's shows it take over
        p2.locator(inst + ".st-MASTER").wait_for(timeout=SEEN_S * 1000)
        p1.wait_for_selector("#conn.disconnected", timeout=SEEN_S * 1000)
        assert p1.locator("#banner").is_visible()

        p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names["rs2"]}"][data-health="up"]').wait_for(
            timeout=SEEN_S * 1000)
        with HeldConnection(lab) as held:
            drained = held.ask()  # the real server that this open connection reaches
            drain = p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[drained]}"] button[data-action^="drain:"]')
            with p2.expect_response(lambda r: r.request.method == "POST") as answer:
                drain.click()
                drain.click()
            status = answer.value.status
            if status in (403, 404, 405):
                pytest.skip(f"the runtime API answered HTTP {status} to the page's drain: "
                            "its routes are not in this branch or not enabled")
            assert status == 200, answer.value.text()
            p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[drained]}"] >> text=drained').wait_for(
                timeout=SEEN_S * 1000)
            names = [lab.client_get(f"http://{VIP}/whoami").split()[0] for _ in range(6)]
            assert drained not in names and len(set(names)) == 2, names  # no new connection reaches it
            assert held.ask() == drained  # the connection it had goes on
        assert consoles["router2"].errors == [], consoles["router2"].errors


class HeldConnection:
    """One HTTP keep-alive connection from the lab's client to the VIP, kept open across a drain."""

    SCRIPT = ("import http.client, sys\n"
              "c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)\n"
              "for _ in sys.stdin:\n"
              "    c.request('GET', '/whoami')\n"
              "    print(c.getresponse().read().decode().split()[0], flush=True)\n")

    def __init__(self, lab: LvsLab) -> None:
        self._argv = lab.client.netns.argv([sys.executable, "-c", self.SCRIPT, str(VIP)])
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> HeldConnection:
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def ask(self) -> str:
        """GET /whoami on the same connection: the name of the real server that answered."""
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline().strip()
        assert line, f"the held connection's client ended ({self._proc.poll()})"
        return line

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
