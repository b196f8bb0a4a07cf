"""The status page (api/static/page.html) in Debian's chromium against the API's real aiohttp application.

The application is api/server.py's build_app with a StateStore the test fills
from a full sample document (docs/state.md) and changes while the page is
open. The runtime routes are test routes on the same application that record
each request and answer as the runtime API's contract says (JSON
{"ok", "message"}), because the page's job is to send the right request and
show the answer; the routes themselves are tested with the runtime API. A
middleware of the test holds every /api/v1 route to the contract's bearer token
on TCP (401 without it), whether or not this build_app checks tokens itself.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from pykeepalived.state.store import StateStore

from .harness import ConsoleLog, Proxy, ThreadedApi, chromium_context, playwright_driver
from .sample_state import (HOSTILE_EVENT, HOSTILE_REASON, RS_1, RS_2, VS_DNS, VS_WEB, edited, sample_events,
                           sample_state)

TOKEN = "s3cret-token/with+chars"
LIVE_S = 5.0  # a change in the store is on the page within this (it takes milliseconds; the machine is shared)


@dataclass
class Recorder:
    """What the test routes received, and how they answer."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    require_token: str | None = TOKEN
    runtime_status: int = 200       # what the runtime routes answer (403: the runtime API is off)
    stream_broken: bool = False     # /api/v1/stream answers 404 (a proxy that does not pass it)
    api_down: bool = False          # every /api/v1 route answers 503 and open streams are cut
    streams: list[Any] = field(default_factory=list)


@dataclass
class Lab:
    api: ThreadedApi
    store: StateStore
    rec: Recorder

    def change(self, part: str, edit: Any) -> None:
        """Edit a copy of one part on the server's loop and set it: listeners run where they live."""

        def go() -> None:
            doc = edited(self.store.part(part) or {})
            edit(doc)
            self.store.set_part(part, doc)

        self.api.call(go)


def _make_app(store: StateStore, rec: Recorder) -> Any:
    from aiohttp import web

    from pykeepalived.api.server import build_app

    if "token" in inspect.signature(build_app).parameters:  # the API's own bearer check, when it has one
        app = build_app(store, None, token=TOKEN.encode())
    else:
        app = build_app(store, None)

    @web.middleware
    async def faults(request: web.Request, handler: Any) -> Any:
        if request.path.startswith("/api/v1/"):
            if rec.require_token is not None and request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return web.json_response({"ok": False, "message": "a bearer token is required"}, status=401)
            if rec.api_down:
                raise web.HTTPServiceUnavailable(text=json.dumps({"ok": False, "message": "test: down"}),
                                                 content_type="application/json")
            if rec.stream_broken and request.path == "/api/v1/stream":
                raise web.HTTPNotFound()
            if request.path == "/api/v1/stream":
                rec.streams.append(request.transport)
        return await handler(request)

    async def record(request: web.Request) -> web.Response:
        body = await request.text()
        rec.requests.append({"method": request.method, "path": request.raw_path, "match": dict(request.match_info),
                             "authorization": request.headers.get("Authorization"), "body": body,
                             "content_type": request.content_type})
        if rec.runtime_status != 200:
            return web.json_response({"ok": False, "message": "the runtime API is not enabled"},
                                     status=rec.runtime_status)
        info = request.match_info
        if info.get("action") in ("drain", "undrain"):
            def mark(checker: dict[str, Any]) -> None:
                for vs in checker["virtual_servers"]:
                    for rs in vs["real_servers"]:
                        if vs["name"] == info["vs"] and rs["name"] == info["rs"]:
                            rs["runtime"]["drained"] = info["action"] == "drain"
                            rs["effective_weight"] = 0 if info["action"] == "drain" else rs["weight"]
            doc = edited(store.part("checker") or {})
            mark(doc)
            store.set_part("checker", doc)
        return web.json_response({"ok": True, "message": f"{info.get('action')} done"})

    app.middlewares.append(faults)
    app.router.add_post("/api/v1/virtual-servers/{vs}/real-servers/{rs}/{action}", record)
    app.router.add_post("/api/v1/virtual-servers/{vs}/{action}", record)
    app.router.add_post("/api/v1/vrrp/instances/{name}/{action}", record)
    return app


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with playwright_driver() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(driver: Any) -> Iterator[Any]:
    with chromium_context(driver) as context:
        yield context


@pytest.fixture
def lab() -> Iterator[Lab]:
    store = StateStore()
    for name, part in sample_state().items():
        store.set_part(name, part)
    for event in sample_events():
        store.add_event(event)
    rec = Recorder()
    api = ThreadedApi(lambda: _make_app(store, rec))
    api.start()
    try:
        yield Lab(api, store, rec)
    finally:
        api.stop()


@pytest.fixture
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    """A tab, closed before the lab's server stops (so that the server has no stream left to wait for)."""
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


TOKEN_FRAGMENT = "#token=" + quote(TOKEN, safe="")


def _open(page: Any, lab: Lab, fragment: str = TOKEN_FRAGMENT) -> ConsoleLog:
    """Open the page (with the token in the URL's fragment, as an operator's bookmark would have it)."""
    console = ConsoleLog(page)
    page.goto(lab.api.url + fragment)
    page.wait_for_selector('[data-instance="RH_1"]', timeout=LIVE_S * 1000)
    page.wait_for_selector("#conn.live", timeout=LIVE_S * 1000)
    return console


def _wait_until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LIVE_S
    while not cond():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def _rs(page: Any, vs: str, rs: str) -> Any:
    return page.locator(f'[data-vs="{vs}"] [data-rs="{rs}"]')


def test_page_shows_the_state_escaped_and_without_console_errors(page: Any, lab: Lab) -> None:
    console = _open(page, lab)
    roles = page.locator("#roles").inner_text()
    assert "sync group RH1" in roles and "MASTER" in roles and "this router is master" in roles
    rh1 = page.locator('[data-instance="RH_1"]')
    assert "MASTER" in rh1.inner_text() and "192.0.2.10/24" in rh1.inner_text()
    assert rh1.locator('[data-field="priority"]').inner_text() == "150"
    assert "master down timer expired" in rh1.locator('[data-timeline="RH_1"]').inner_text()
    web = page.locator(f'[data-vs="{VS_WEB}"]')
    assert "1/2 up" in web.inner_text() and "wlc" in web.inner_text()
    assert _rs(page, VS_WEB, RS_1).get_attribute("data-health") == "up"
    assert _rs(page, VS_WEB, RS_2).get_attribute("data-health") == "down"
    assert "3 active" in _rs(page, VS_WEB, RS_1).inner_text()
    assert "HTTP 200" in _rs(page, VS_WEB, RS_1).locator('[data-field="checker"]').inner_text()
    assert page.locator(f'[data-vs="{VS_DNS}"]').count() == 1
    # markup in the state is shown as text and never runs
    assert HOSTILE_REASON in _rs(page, VS_WEB, RS_2).inner_text()
    assert HOSTILE_EVENT in page.locator("#events").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script, main b").count() == 0
    assert page.title() == "MASTER · lvs1 · pykeepalived"  # the role in the tab: two routers' tabs at a glance
    assert "%231e8e3e" in (page.locator("#icon").get_attribute("href") or "")  # a green dot
    assert console.errors == []


def test_page_follows_the_store_live(page: Any, lab: Lab) -> None:
    console = _open(page, lab)

    def to_backup(vrrp: dict[str, Any]) -> None:
        inst = vrrp["instances"][0]
        inst.update(state="BACKUP", master_address="10.0.0.3", effective_priority=100)
        inst["transitions"].append({"at": inst["since"] + 500, "from": "MASTER", "to": "BACKUP",
                                    "reason": "higher priority advert from 10.0.0.3"})
        vrrp["sync_groups"][0]["state"] = "BACKUP"

    def rs_down(checker: dict[str, Any]) -> None:
        rs = checker["virtual_servers"][0]["real_servers"][0]
        rs.update(healthy=False, effective_weight=0)
        rs["checkers"][0].update(verdict="down", last_reason="connection refused")

    lab.change("vrrp", to_backup)
    rh1 = page.locator('[data-instance="RH_1"]')
    rh1.locator('[data-field="state"].st-BACKUP').wait_for(timeout=LIVE_S * 1000)
    assert rh1.locator('[data-field="master"]').inner_text() == "10.0.0.3 (peer)"
    assert rh1.locator('[data-field="priority"]').inner_text() == "150 → 100"
    assert "higher priority advert from 10.0.0.3" in rh1.locator('[data-timeline="RH_1"]').inner_text()
    assert "master: 10.0.0.3 (peer)" in page.locator('[data-role="sync group RH1"]').inner_text()
    assert page.title() == "BACKUP/MASTER · lvs1 · pykeepalived"  # RH_1 is BACKUP, RH_2 still MASTER

    lab.change("checker", rs_down)
    page.locator(f'[data-vs="{VS_WEB}"] [data-rs="{RS_1}"][data-health="down"]').wait_for(timeout=LIVE_S * 1000)
    assert "connection refused" in _rs(page, VS_WEB, RS_1).inner_text()
    assert "0/2 up" in page.locator(f'[data-vs="{VS_WEB}"]').inner_text()

    lab.api.call(lambda: lab.store.add_event({"at": 2e9, "kind": "runtime", "subject": "RH_1",
                                              "text": "maintenance requested by ops"}))
    page.locator('[data-timeline="RH_1"] >> text=maintenance requested by ops').wait_for(timeout=LIVE_S * 1000)
    assert page.locator("#conn").inner_text() == "live"
    assert console.errors == []


def test_parts_that_come_and_go_show_and_hide_their_sections(page: Any, lab: Lab) -> None:
    """A VRRP-only or checker-only router, or a child that stopped: the page shows what there is."""
    console = _open(page, lab)
    lab.api.call(lambda: lab.store.drop_part("vrrp"))
    page.wait_for_selector("#roles-section", state="hidden", timeout=LIVE_S * 1000)
    assert page.locator("#instances-section").is_hidden()
    assert page.locator(f'[data-vs="{VS_WEB}"]').is_visible()
    lab.api.call(lambda: lab.store.drop_part("checker"))
    page.wait_for_selector("#vs-section", state="hidden", timeout=LIVE_S * 1000)
    assert page.title() == "lvs1 · pykeepalived"
    assert HOSTILE_EVENT in page.locator("#events").inner_text()
    lab.api.call(lambda: lab.store.set_part("vrrp", sample_state()["vrrp"]))
    page.wait_for_selector('[data-instance="RH_1"]', timeout=LIVE_S * 1000)
    assert console.errors == []


def test_drain_button_sends_the_runtime_request_with_the_token(page: Any, lab: Lab) -> None:
    console = _open(page, lab)
    assert "token" not in page.url  # the token leaves the address bar at once
    drain = _rs(page, VS_WEB, RS_1).locator("button[data-action^='drain:']")
    drain.click()
    assert lab.rec.requests == []  # the first tap only arms the button
    assert "Tap again" in drain.inner_text()
    drain.click()
    _rs(page, VS_WEB, RS_1).locator("text=drained").wait_for(timeout=LIVE_S * 1000)
    [req] = lab.rec.requests
    assert req["method"] == "POST"
    assert req["path"] == "/api/v1/virtual-servers/TCP%20192.0.2.10%3A80/real-servers/10.11.12.2%3A80/drain"
    assert req["match"] == {"vs": VS_WEB, "rs": RS_1, "action": "drain"}
    assert req["authorization"] == f"Bearer {TOKEN}"
    assert req["content_type"] == "application/json" and json.loads(req["body"]) == {}
    page.locator(".toast.ok >> text=done").wait_for(timeout=LIVE_S * 1000)

    undrain = _rs(page, VS_WEB, RS_1).locator("button[data-action^='undrain:']")
    undrain.click()
    undrain.click()
    _rs(page, VS_WEB, RS_1).locator("button[data-action^='drain:']").wait_for(timeout=LIVE_S * 1000)
    assert lab.rec.requests[-1]["path"].endswith("/real-servers/10.11.12.2%3A80/undrain")

    maint = page.locator('[data-instance="RH_1"] button[data-action="maintenance:RH_1"]')
    maint.click()
    maint.click()
    _wait_until(lambda: len(lab.rec.requests) == 3)
    assert lab.rec.requests[-1]["path"] == "/api/v1/vrrp/instances/RH_1/maintenance"
    out = page.locator(f'[data-vs="{VS_DNS}"] button[data-action="out:{VS_DNS}"]')
    out.click()
    out.click()
    _wait_until(lambda: len(lab.rec.requests) == 4)
    assert lab.rec.requests[-1]["path"] == "/api/v1/virtual-servers/UDP%20192.0.2.53%3A53/out"
    assert console.errors == []


def test_without_a_token_the_page_says_so_and_a_refused_action_shows_its_status(page: Any, lab: Lab) -> None:
    console = ConsoleLog(page)
    page.goto(lab.api.url)
    page.locator("#banner", has_text="HTTP 401").wait_for(timeout=LIVE_S * 1000)
    assert "Enter the API token" in page.locator("#banner").inner_text()
    assert page.locator("#token-box").get_attribute("open") is not None
    assert page.locator("[data-instance]").count() == 0

    page.fill("#token", TOKEN)
    page.click("#token-save")
    page.wait_for_selector("#conn.live", timeout=LIVE_S * 1000)
    page.wait_for_selector('[data-instance="RH_1"]', timeout=LIVE_S * 1000)
    assert page.evaluate("sessionStorage.getItem('pykeepalived.token')") == TOKEN
    assert not page.locator("#banner").is_visible()

    lab.rec.runtime_status = 403
    drain = _rs(page, VS_WEB, RS_2).locator("button[data-action^='drain:']")
    drain.click()
    drain.click()
    toast = page.locator(".toast.err")
    toast.wait_for(timeout=LIVE_S * 1000)
    assert "HTTP 403" in toast.inner_text() and "not enabled" in toast.inner_text()
    assert lab.rec.requests[-1]["authorization"] == f"Bearer {TOKEN}"
    # the browser itself logs each refused request; nothing else may go wrong
    assert console.errors and all(" 401 " in e or " 403 " in e for e in console.errors), console.errors


def test_page_shows_a_lost_connection_and_comes_back(page: Any, lab: Lab) -> None:
    _open(page, lab)
    lab.rec.api_down = True
    lab.api.call(lambda: [t.close() for t in lab.rec.streams if t is not None])
    page.wait_for_selector("#conn.disconnected", timeout=LIVE_S * 1000)
    assert page.locator("#banner").is_visible()
    page.locator("#banner", has_text="HTTP 503").wait_for(timeout=LIVE_S * 1000)  # once it has asked again
    assert "is-stale" in (page.locator("body").get_attribute("class") or "")
    assert page.title().startswith("(disconnected) ")
    lab.rec.api_down = False
    page.wait_for_selector("#conn.live", timeout=20_000)
    assert not page.locator("#banner").is_visible()
    lab.change("vrrp", lambda v: v["instances"][1].update(state="FAULT"))
    page.locator('[data-instance="RH_2"] [data-field="state"].st-FAULT').wait_for(timeout=LIVE_S * 1000)


@pytest.mark.slow
def test_a_router_gone_silent_is_shown_stale_and_comes_back(page: Any, lab: Lab) -> None:
    """The stream stays open but nothing moves (a router that lost power): the page notices by itself."""
    proxy = Proxy(lab.api, port=lab.api.port)
    proxy.start()
    try:
        console = ConsoleLog(page)
        page.goto(proxy.url + TOKEN_FRAGMENT)
        page.wait_for_selector("#conn.live", timeout=LIVE_S * 1000)
        frozen_at = time.monotonic()
        proxy.freeze()
        # 20 s without a byte, then a 5 s probe of the state: stale (then reconnecting, still red)
        page.locator("#banner", has_text="no answer within 5 s").wait_for(timeout=45_000)
        assert time.monotonic() - frozen_at > 19
        assert "is-stale" in (page.locator("body").get_attribute("class") or "")
        assert page.title().startswith("(")
        proxy.thaw()
        page.wait_for_selector("#conn.live", timeout=30_000)
        lab.change("vrrp", lambda v: v["instances"][0].update(state="FAULT"))
        page.locator('[data-instance="RH_1"] [data-field="state"].st-FAULT').wait_for(timeout=LIVE_S * 1000)
        assert console.errors == [], console.errors
    finally:
        page.close()
        proxy.stop()


def test_page_polls_the_state_when_the_stream_does_not_pass(page: Any, lab: Lab) -> None:
    lab.rec.stream_broken = True
    console = ConsoleLog(page)
    page.goto(lab.api.url + TOKEN_FRAGMENT)
    page.wait_for_selector("#conn.polling", timeout=20_000)
    assert page.locator('[data-instance="RH_1"]').count() == 1
    lab.change("vrrp", lambda v: v["instances"][1].update(state="BACKUP"))
    page.locator('[data-instance="RH_2"] [data-field="state"].st-BACKUP').wait_for(timeout=LIVE_S * 1000)
    assert all("404" in e for e in console.errors), console.errors


def test_phone_viewport_has_no_horizontal_overflow_and_large_targets(driver: Any, lab: Lab) -> None:
    def long_names(checker: dict[str, Any]) -> None:
        rs = checker["virtual_servers"][0]["real_servers"][1]
        rs["checkers"][0]["last_reason"] = "x" * 300
        rs["runtime"]["weight"] = 5

    lab.change("checker", long_names)
    with chromium_context(driver, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                          device_scale_factor=3) as phone:
        _check_phone_layout(phone.new_page(), lab)


def _check_phone_layout(page: Any, lab: Lab) -> None:
    try:
        console = _open(page, lab)
        widths = page.evaluate("""() => {
            const vw = document.documentElement.clientWidth;
            const wide = [...document.querySelectorAll('body *')].filter((e) => {
                const r = e.getBoundingClientRect();
                return r.width > 0 && r.right > vw + 0.5;
            }).map((e) => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right);
            return {vw, scroll: document.documentElement.scrollWidth, wide};
        }""")
        assert widths["vw"] == 390
        assert widths["scroll"] <= widths["vw"], widths
        assert widths["wide"] == [], widths
        small = page.evaluate("""() => [...document.querySelectorAll('button, input, summary')]
            .filter((e) => e.offsetParent !== null)
            .map((e) => e.getBoundingClientRect())
            .filter((r) => r.height < 44 || r.width < 44).length""")
        assert small == 0
        assert console.errors == []
    finally:
        page.close()
