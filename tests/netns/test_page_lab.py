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
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import lvs_lab, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import PUBLIC_INSTANCE, VIP, LvsLab

from ..browser.harness import ConsoleLog, ThreadedApi, UnixProxy, chromium_context, skip_unless_browser
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

SEEN_S = 10.0  # a change in the lab is on the page within this (checker retries, 3 adverts, a shared machine)


def _socket(router: lvs_lab.Router) -> Path:
    return router.dir / f"{router.name}.api.sock"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LvsLab]:
    skip_unless_browser()
    plain_argv = lvs_lab.Router.argv

    def with_api(router: lvs_lab.Router) -> list[str]:
        return [*plain_argv(router), "--api", f"unix:{_socket(router)}"]

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
def proxies(lab: LvsLab) -> Iterator[dict[str, UnixProxy]]:
    loop = ThreadedApi(None)
    loop.start()
    made: dict[str, UnixProxy] = {}
    try:
        for name, router in lab.routers.items():
            wait_until(_socket(router).exists, 10.0, what=f"{name}'s API socket")
            made[name] = UnixProxy(loop, str(_socket(router)))
            made[name].start()
        yield made
    finally:
        for proxy in made.values():
            proxy.stop()
        loop.stop()


def _get_state(proxy: UnixProxy) -> dict[str, Any]:
    with urllib.request.urlopen(proxy.url + "api/v1/state", timeout=5) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SEEN_S
    while not cond():
        assert time.monotonic() < deadline, f"not within {SEEN_S} s: {what}"
        time.sleep(0.1)


def test_page_shows_the_lab_follows_it_and_drains_a_real_server(lab: LvsLab, proxies: dict[str, UnixProxy]) -> None:
    doc = _get_state(proxies["router1"])
    if "vrrp" not in doc or "checker" not in doc:
        pytest.skip(f"the parent's state has no VRRP or checker part yet (keys {sorted(doc)}): "
                    "the children's state feed is not in this branch")
    web = next(vs for vs in doc["checker"]["virtual_servers"] if vs.get("address") == str(VIP))
    vs_name = web["name"]
    rs_names = [rs["name"] for rs in web["real_servers"]]
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
        for rs in rs_names:
            p1.locator(f'[data-vs="{vs_name}"] [data-rs="{rs}"][data-health="up"]').wait_for(timeout=SEEN_S * 1000)

        lab.stop_real_server("rs2")
        p1.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[1]}"][data-health="down"]').wait_for(
            timeout=SEEN_S * 1000)
        lab.start_real_server("rs2")

        lab.kill_router("router1")
        p2.locator(inst + ".st-MASTER").wait_for(timeout=SEEN_S * 1000)
        p1.wait_for_selector("#conn.disconnected", timeout=SEEN_S * 1000)
        for name in ("router2",):
            assert consoles[name].errors == [], consoles[name].errors

        p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[1]}"][data-health="up"]').wait_for(
            timeout=SEEN_S * 1000)
        drain = p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[0]}"] button[data-action^="drain:"]')
        with p2.expect_response(lambda r: r.request.method == "POST") as answer:
            drain.click()
            drain.click()
        status = answer.value.status
        if status in (403, 404, 405):
            pytest.skip(f"the runtime API answered HTTP {status} to the page's drain: "
                        "its routes are not in this branch or not enabled")
        assert status == 200, answer.value.text()
        p2.locator(f'[data-vs="{vs_name}"] [data-rs="{rs_names[0]}"] >> text=drained').wait_for(
            timeout=SEEN_S * 1000)
        drained_host = "rs1"
        names = [lab.client_get(f"http://{VIP}/whoami").split()[0] for _ in range(6)]
        assert drained_host not in names and set(names) == {"rs2", "rs3"}, names
        assert consoles["router2"].errors == [], consoles["router2"].errors
