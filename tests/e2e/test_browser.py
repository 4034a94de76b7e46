"""The local stack's web page, driven in Debian's headless Chromium with Playwright.

Three journeys:

* one page's lifetime: create a conversation, stream a reply, set a 20 s interval, enable warming,
  watch the countdown run out and a warm happen, screenshots, close the tab;
* opening existing conversations: in a new browser session from the list, and after a reload,
  the live panel shows within a second (the panel used to never render in a new session);
* coming back: a Markdown reply rendered safely (and labelled as emulated), warming on, the
  gateway drops the page's socket and the page reconnects and re-subscribes, the browser is
  closed while warming goes on, and a new session minutes (well, intervals) later shows the
  warms that happened meanwhile.

Playwright cannot download its browsers here (the machine is offline): the test drives
/usr/bin/chromium, which `make test` installs through scripts/install-browser.sh.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

INTERVAL_SECONDS = 20
# The first warm is due at most INTERVAL_SECONDS after the sealed turn; the warm starts within 2 s
# of its nextWarmAt; the rest is slack for a loaded machine.
WARM_TIMEOUT_MS = (INTERVAL_SECONDS + 15) * 1000
# "Within a second" of opening a conversation, as the issue asks.
PANEL_MS = 1000

# A reply the emulator is told to give (its admin API), to see how the page renders Markdown and
# what it does with HTML in a reply.
MARKDOWN_REPLY = """## Caching, briefly

Prompt caching keeps **the prefix** warm, with `cache_control` on its last block.

- one: a [link](https://docs.example.com/caching)
- two: *emphasis* <img src=x onerror="window.__xss = 1">

```python
print("<script>window.__xss = 2</script>")
```

<script>window.__xss = 3</script> and [a trap](javascript:window.__xss=4)"""


def _api(
    endpoints: dict[str, Any], method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    request = urllib.request.Request(
        endpoints["httpUrl"].rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {endpoints['token']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _emulator_config(endpoints: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Change the Anthropic emulator's configuration (its admin API); returns the new one."""
    request = urllib.request.Request(
        endpoints["anthropicUrl"] + "/_emulator/config",
        data=json.dumps(changes).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        config: dict[str, Any] = json.loads(response.read())
        return config


def _gateway_connections(endpoints: dict[str, Any], user_agent: str) -> list[str]:
    """Ids of the gateway's live sockets opened by a browser with this user agent."""
    with urllib.request.urlopen(endpoints["managementUrl"] + "/@connections", timeout=10) as r:
        listed = json.loads(r.read())["connections"]
    return [c["connectionId"] for c in listed if c["identity"]["userAgent"] == user_agent]


def _drop_connection(endpoints: dict[str, Any], connection_id: str) -> None:
    """What API Gateway's DeleteConnection does: the gateway closes the socket."""
    url = endpoints["managementUrl"] + "/@connections/" + urllib.parse.quote(connection_id)
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10) as r:
        assert r.status == 204


def _ws_request(endpoints: dict[str, Any], frame: dict[str, Any]) -> dict[str, Any]:
    """One frame from another client (not the page), and its reply."""
    with connect(f"{endpoints['wsUrl']}/?token={endpoints['token']}", open_timeout=10) as ws:
        ws.send(json.dumps({**frame, "requestId": "browser-test"}))
        while True:
            reply: dict[str, Any] = json.loads(ws.recv(timeout=10))
            if reply.get("requestId") == "browser-test":
                return reply


def assert_one_line(page: Page, *testids: str) -> None:
    """Each element's text sits on one line: "in 4 m 39 s" never leaves its "s" on the next."""
    for testid in testids:
        node = page.get_by_test_id(testid)
        if not node.inner_text().strip():
            continue
        lines = node.evaluate("n => n.getClientRects().length")
        assert lines == 1, f"{testid} wraps over {lines} lines: {node.inner_text()!r}"


def record_chart_cost(page: Page) -> dict[str, Any]:
    """What the chart costs the page, measured in this browser: the vendored library's bytes
    (as served, and gzipped), how long the history took to read, and the first draw (to the
    next frame). Written next to the screenshots, for the issue's closing note."""
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_have_attribute("data-render-ms", re.compile(r"^\d"))
    timing = page.evaluate(
        """() => performance.getEntriesByType('resource')
            .filter((e) => e.name.includes('/web/vendor/uplot/') || e.name.endsWith('/web/chart.js'))
            .map((e) => ({name: e.name.split('/').pop(), bytes: e.decodedBodySize,
                          ms: Math.round(e.duration * 10) / 10}))"""
    )
    vendor = ROOT / "devstack" / "web" / "vendor" / "uplot" / "uPlot.iife.min.js"
    cost = {
        "libraryBytes": vendor.stat().st_size,
        "libraryGzipBytes": len(gzip.compress(vendor.read_bytes(), 9)),
        "chartJsBytes": (ROOT / "devstack" / "web" / "chart.js").stat().st_size,
        "cssBytes": (vendor.parent / "uPlot.min.css").stat().st_size,
        "historyLoadMs": float(chart.get_attribute("data-load-ms") or 0),
        "firstRenderMs": float(chart.get_attribute("data-render-ms") or 0),
        "entries": int(chart.get_attribute("data-entries") or 0),
        "resources": timing,
    }
    (SCREENSHOTS / "chart-cost.json").write_text(json.dumps(cost, indent=2) + "\n")
    assert cost["libraryGzipBytes"] < 30_000, cost  # "small on the page"
    return cost


def _int_attr(page: Page, testid: str, name: str) -> int | None:
    value = page.get_by_test_id(testid).get_attribute(name)
    return int(value) if value else None


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium package. "
            "`make test` installs it (scripts/install-browser.sh); or run "
            "`bash scripts/install-browser.sh` yourself."
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Session:
    """A browser session (its own storage, like a fresh browser profile) with one page."""

    def __init__(self, browser: Browser, endpoints: dict[str, Any], agent: str) -> None:
        self.agent = agent
        self.errors: list[str] = []
        self.context: BrowserContext = browser.new_context(
            viewport={"width": 1440, "height": 900}, user_agent=agent
        )
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(endpoints["httpUrl"].rstrip("/") + "/")
        expect(self.page.get_by_test_id("connection")).to_have_attribute("data-state", "open")

    def open_from_list(self, conversation_id: str) -> None:
        item = self.page.locator(
            f"[data-testid=conversation-item][data-conversation-id='{conversation_id}']"
        )
        item.click()

    def expect_live_panel(self, title: str, timeout_ms: int = PANEL_MS) -> None:
        """The panel of the conversation with that title, its fields from the server's surface
        (until the surface arrives the panel shows only "Loading…")."""
        panel = self.page.get_by_test_id("warming-panel")
        expect(panel.get_by_test_id("panel-conversation")).to_have_text(title, timeout=timeout_ms)
        expect(panel.get_by_test_id("status")).to_be_visible(timeout=timeout_ms)
        expect(panel.get_by_test_id("countdown")).to_be_visible(timeout=timeout_ms)

    def close(self) -> None:
        self.context.close()


def test_page_chats_warms_and_closes(devstack: dict[str, Any], browser: Browser) -> None:
    session = Session(browser, devstack, "browser-test/journey")
    page = session.page

    # A new conversation opens as a tab with its warming panel (warming off by default).
    page.get_by_test_id("new-conversation").click()
    tab = page.get_by_test_id("tab")
    expect(tab).to_have_count(1)
    conversation_id = tab.get_attribute("data-conversation-id")
    assert conversation_id
    expect(page.get_by_test_id("status")).to_have_text("off")
    expect(page.get_by_test_id("countdown")).to_have_text("—")
    # Fresh: nothing spent, nothing paid off, and the chart says it starts with the first reply.
    expect(page.get_by_test_id("savings-verdict")).to_have_text("nothing spent yet")
    expect(page.get_by_test_id("history-summary")).to_have_text(re.compile("^Nothing yet"))
    expect(page.get_by_test_id("rescue-note")).to_contain_text("A rescue is a message")
    expect(page.get_by_test_id("first-warm-note")).to_contain_text("first warm after each reply")
    page.screenshot(path=str(SCREENSHOTS / "fresh.png"))

    # A message streams a reply that ends sealed, with its usage; the emulator's reply says so.
    page.get_by_test_id("composer").fill("Hello! What can prompt caching do for me?")
    page.get_by_test_id("send").click()
    reply = page.locator("[data-testid=message-assistant][data-status=sealed]")
    expect(reply).to_have_count(1, timeout=30_000)
    assert reply.locator(".msg-text").inner_text().strip()
    expect(reply.get_by_test_id("turn-usage")).to_contain_text("cache")
    expect(reply.get_by_test_id("emulated")).to_have_text("emulated")
    expect(page.get_by_test_id("cancel")).to_be_hidden()
    # The chart has the sealed turn, from the history (kept live from the `turn-sealed` update).
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_have_attribute("data-entries", "1")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("interval-warning")).to_have_text("")
    expect(page.get_by_test_id("interval-cost-per-hour")).to_have_text(
        re.compile(r"^≈ \$0\.\d+ per hour of warming at this interval$")
    )
    per_hour_default = page.get_by_test_id("interval-cost-per-hour").inner_text()

    # Interval 20 s, then warming on: a countdown to a future warm. The short interval warns
    # that it only costs more (the hour's cost goes up 14.5x).
    page.get_by_test_id("interval-input").fill(str(INTERVAL_SECONDS))
    page.get_by_test_id("interval-apply").click()
    expect(page.get_by_test_id("interval-input")).to_have_value(str(INTERVAL_SECONDS))
    expect(page.get_by_test_id("interval-error")).to_have_text("")
    expect(page.get_by_test_id("interval-warning")).to_contain_text("only costs more")
    expect(page.get_by_test_id("interval-warning")).to_contain_text("14.5\u00d7 as often")
    assert page.get_by_test_id("interval-cost-per-hour").inner_text() != per_hour_default
    page.get_by_test_id("warming-toggle").check()
    expect(page.get_by_test_id("warming-toggle")).to_be_checked()
    expect(page.get_by_test_id("status")).to_have_text("scheduled")
    countdown = page.get_by_test_id("countdown")
    expect(countdown).to_have_text(re.compile(r"^in \d+ s$"))
    first_next = _int_attr(page, "countdown", "data-next-warm-at")
    assert first_next is not None
    assert page.get_by_test_id("last-warm").inner_text() == "never"
    expect(page.get_by_test_id("cache-expiry")).to_have_text(
        re.compile(r"^cache expires in (\d+ s|\d+ m \d+ s)$")
    )
    expect(page.get_by_test_id("warms-left")).to_have_text(
        re.compile(r"^\d+ warms? left before the idle pause$")
    )

    # Record every text the countdown shows until the warm: never a stuck "in 0 s".
    page.evaluate(
        """() => {
            const node = document.querySelector('[data-testid=countdown]');
            window.__countdownTexts = [node.textContent];
            new MutationObserver(() => window.__countdownTexts.push(node.textContent))
                .observe(node, {childList: true, characterData: true, subtree: true});
        }"""
    )

    # The warm happens: the countdown re-arms to a new future value, last warm updates.
    started = time.monotonic()
    page.wait_for_function(
        """(before) => {
            const next = Number(document.querySelector('[data-testid=countdown]')
                .dataset.nextWarmAt || 0);
            const last = document.querySelector('[data-testid=last-warm]').dataset.lastWarmAt;
            return Boolean(last) && next > before;
        }""",
        arg=first_next,
        timeout=WARM_TIMEOUT_MS,
        polling=250,
    )
    waited = time.monotonic() - started
    second_next = _int_attr(page, "countdown", "data-next-warm-at")
    last_warm = _int_attr(page, "last-warm", "data-last-warm-at")
    assert second_next is not None and last_warm is not None
    assert second_next > first_next
    assert second_next > time.time() * 1000 - 2000, "the re-armed countdown is in the past"
    assert last_warm >= first_next - 2000, "the warm started well before its nextWarmAt"
    expect(countdown).to_have_text(re.compile(r"^in \d+ s$"))
    expect(page.get_by_test_id("last-warm")).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    expect(page.get_by_test_id("status")).to_have_text("scheduled")
    expect(page.get_by_test_id("cache-pct")).to_have_text(re.compile(r"^\d+\.\d %$"))
    assert int(page.get_by_test_id("warm-cost").get_attribute("data-warms") or 0) >= 1
    expect(page.get_by_test_id("warm-cost")).to_contain_text("$")
    # The cache in use and why: a new conversation is "auto", on 5m until turns are measured.
    expect(page.get_by_test_id("cache-retention")).to_have_text("5m (auto)")
    expect(page.get_by_test_id("cache-retention-reason")).to_contain_text("auto: 5m")
    # Savings: the warm is spent; nobody has come back yet, so nothing is saved and net is
    # negative (a rescue needs the user back after the 5-minute TTL: moto and service tests).
    expect(page.get_by_test_id("savings-spent")).to_have_text(re.compile(r"^\$0\.\d+$"))
    expect(page.get_by_test_id("savings-saved")).to_have_text("$0")
    expect(page.get_by_test_id("savings-net")).to_have_text(re.compile("^\u2212" + r"\$0\.\d+$"))
    expect(page.get_by_test_id("savings")).to_have_attribute("data-rescues", "0")
    spent_shown = page.get_by_test_id("savings-spent").inner_text()
    detail = _api(devstack, "GET", f"/conversations/{conversation_id}")["warming"]["savings"]
    assert detail["rescues"] == 0 and detail["savedUsd"] == 0
    assert spent_shown.startswith("$") and float(spent_shown[1:]) > 0
    assert _api(devstack, "GET", "/savings")["spentUsd"] >= detail["spentUsd"] > 0
    texts: list[str] = page.evaluate("window.__countdownTexts")
    assert "in 0 s" not in texts, texts
    assert waited < INTERVAL_SECONDS + 10, f"the warm came {waited:.1f} s after enabling"
    # One "Last warm": when, and what it cost; nothing has paid off, since nobody came back.
    expect(page.get_by_test_id("last-warm-cost")).to_have_text(re.compile(r"^· \$0\.\d+$"))
    expect(page.get_by_test_id("savings-verdict")).to_have_text("nothing paid off yet")
    # The warm reached the chart live (its `warm` update), and survives a reload.
    expect(chart).to_have_attribute("data-warms", re.compile(r"^[1-9]"))
    entries = int(chart.get_attribute("data-entries") or 0)
    assert entries >= 2
    assert_one_line(page, "countdown", "cache-expiry", "last-warm")

    # Screenshots: the panel and the whole page.
    page.wait_for_timeout(1500)  # "last warm" reads "1 s ago", the countdown has moved
    page.get_by_test_id("warming-panel").screenshot(path=str(SCREENSHOTS / "panel.png"))
    page.screenshot(path=str(SCREENSHOTS / "page.png"), full_page=True)

    page.reload()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_have_attribute("data-conversation-id", conversation_id)
    # The history loads after the page does: wait for it (the chart starts empty).
    expect(chart).to_have_attribute("data-entries", re.compile(r"^[1-9]\d*$"))
    assert int(chart.get_attribute("data-entries") or 0) >= entries
    record_chart_cost(page)
    page.screenshot(path=str(SCREENSHOTS / "warming.png"))
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        # The README's picture: the chart drawn from the history after a reload, and the panel.
        # Opt-in, so a test run never leaves a tracked file modified.
        shutil.copyfile(SCREENSHOTS / "warming.png", README_SCREENSHOT)

    # The tab's x asks first (warming is on) and says what closing stops; keeping it open
    # changes nothing.
    page.get_by_test_id("tab-close").click()
    dialog = page.get_by_test_id("close-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("close-dialog-text")).to_contain_text("turns cache warming off")
    page.get_by_test_id("close-keep").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("tab")).to_have_count(1)
    expect(page.get_by_test_id("warming-toggle")).to_be_checked()
    # Closing for real: warming off, status closed, the tab gone, and a note of what stopped.
    page.get_by_test_id("tab-close").click()
    page.get_by_test_id("close-confirm").click()
    expect(page.get_by_test_id("tab")).to_have_count(0)
    expect(page.get_by_test_id("toast").last).to_have_text(
        re.compile("^Closed “.*”: turned cache warming off\\.$")
    )
    item = page.locator(
        f"[data-testid=conversation-item][data-conversation-id='{conversation_id}']"
    )
    expect(item).to_contain_text("closed")
    page.screenshot(path=str(SCREENSHOTS / "closed.png"), full_page=True)
    session.close()

    conversation = _api(devstack, "GET", f"/conversations/{conversation_id}")
    assert conversation["closed"] is True
    assert conversation["warming"]["enabled"] is False
    assert conversation["warming"]["status"] == "closed"
    assert conversation["warming"]["nextWarmAt"] is None
    assert [turn["status"] for turn in conversation["turns"]] == ["sealed"]
    assert session.errors == [], session.errors


def test_existing_conversations_open_with_their_live_panel(
    devstack: dict[str, Any], browser: Browser
) -> None:
    stamp = time.strftime("%H:%M:%S")
    first_title, second_title = f"Existing A {stamp}", f"Existing B {stamp}"
    first = _api(devstack, "POST", "/conversations", {"title": first_title})["conversationId"]
    second = _api(devstack, "POST", "/conversations", {"title": second_title})["conversationId"]
    _ws_request(
        devstack,
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": second,
            "action": "cache-warming/set-interval",
            "payload": 90,
        },
    )

    # A new browser session: nothing in its storage, the conversations only in the list.
    session = Session(browser, devstack, "browser-test/existing")
    page = session.page
    expect(page.get_by_test_id("tab")).to_have_count(0)
    session.open_from_list(first)
    session.expect_live_panel(first_title)
    expect(page.get_by_test_id("status")).to_have_text("off")
    # The default interval is the cache's TTL - 10 s.
    expect(page.get_by_test_id("interval-input")).to_have_value("290")

    session.open_from_list(second)
    session.expect_live_panel(second_title)
    expect(page.get_by_test_id("interval-input")).to_have_value("90")

    # After a reload the tabs come back, and the active one's panel with them.
    page.reload()
    session.expect_live_panel(second_title)
    expect(page.get_by_test_id("tab")).to_have_count(2)
    expect(page.get_by_test_id("interval-input")).to_have_value("90")
    page.locator(f"[data-testid=tab][data-conversation-id='{first}'] .tab-title").click()
    session.expect_live_panel(first_title)

    # The panel is live: a change made elsewhere shows at once.
    _ws_request(
        devstack,
        {
            "type": "invoke",
            "surfaceId": "cache-warming",
            "conversationId": first,
            "action": "cache-warming/set-interval",
            "payload": 150,
        },
    )
    expect(page.get_by_test_id("interval-input")).to_have_value("150", timeout=PANEL_MS)
    session.close()
    for conversation_id in (first, second):
        _api(devstack, "POST", f"/conversations/{conversation_id}/close")
    assert session.errors == [], session.errors


def test_coming_back_after_the_browser_was_closed(
    devstack: dict[str, Any], browser: Browser
) -> None:
    _emulator_config(devstack, {"reply_text": MARKDOWN_REPLY})
    try:
        session = Session(browser, devstack, "browser-test/before")
        page = session.page
        page.get_by_test_id("new-conversation").click()
        expect(page.get_by_test_id("tab")).to_have_count(1)
        conversation_id = page.get_by_test_id("tab").get_attribute("data-conversation-id")
        assert conversation_id
        title = page.get_by_test_id("panel-conversation").inner_text()
        page.get_by_test_id("composer").fill("Show me some Markdown.")
        page.get_by_test_id("send").click()
        reply = page.locator("[data-testid=message-assistant][data-status=sealed]")
        expect(reply).to_have_count(1, timeout=30_000)
    finally:
        _emulator_config(devstack, {"reply_text": None})

    # The reply is rendered Markdown; its HTML stayed text and its script never ran.
    text = reply.locator(".msg-text")
    expect(text.locator("h2")).to_have_text("Caching, briefly")
    expect(text.locator("strong")).to_have_text("the prefix")
    expect(text.locator("li")).to_have_count(2)
    expect(text.locator("pre code")).to_contain_text('print("<script>')
    link = text.locator("a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://docs.example.com/caching")
    expect(text).to_contain_text('<img src=x onerror="window.__xss = 1">')
    expect(text).to_contain_text("a trap")
    assert text.locator("img, script, iframe").count() == 0
    assert page.evaluate("window.__xss") is None
    expect(reply.get_by_test_id("emulated")).to_be_visible()

    # Warming on at the shortest interval.
    page.get_by_test_id("interval-input").fill(str(INTERVAL_SECONDS))
    page.get_by_test_id("interval-apply").click()
    expect(page.get_by_test_id("interval-input")).to_have_value(str(INTERVAL_SECONDS))
    page.get_by_test_id("warming-toggle").check()
    expect(page.get_by_test_id("status")).to_have_text("scheduled")

    # The gateway drops the page's socket (as API Gateway does at its limits): the page
    # reconnects by itself and re-subscribes, so a change made elsewhere still reaches it.
    [connection_id] = _gateway_connections(devstack, session.agent)
    _drop_connection(devstack, connection_id)
    expect(page.get_by_test_id("connection")).not_to_have_attribute(
        "data-state", "open", timeout=2000
    )
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
    # Open is not subscribed yet: the page restores its subscriptions right after.
    expect(page.get_by_test_id("connection")).to_have_attribute("data-resubscribed", "1")
    [reconnected] = _gateway_connections(devstack, session.agent)
    assert reconnected != connection_id
    for seconds in (25, INTERVAL_SECONDS):
        _ws_request(
            devstack,
            {
                "type": "invoke",
                "surfaceId": "cache-warming",
                "conversationId": conversation_id,
                "action": "cache-warming/set-interval",
                "payload": seconds,
            },
        )
        expect(page.get_by_test_id("interval-input")).to_have_value(str(seconds))
    errors_before = list(session.errors)
    warms_before = int(page.get_by_test_id("warm-cost").get_attribute("data-warms") or 0)

    # The browser goes away while warming is on.
    session.close()
    closed_at_ms = time.time() * 1000
    deadline = time.monotonic() + 3 * INTERVAL_SECONDS + 20
    warming: dict[str, Any] = {}
    while time.monotonic() < deadline:
        warming = _api(devstack, "GET", f"/conversations/{conversation_id}")["warming"]
        if warming["warms"] >= warms_before + 2:
            break
        time.sleep(1)
    assert warming["warms"] >= warms_before + 2, f"warming stopped without a browser: {warming}"
    assert warming["lastWarmAt"] > closed_at_ms

    # A new browser session later: the conversation, from the list, shows those warms.
    back = Session(browser, devstack, "browser-test/after")
    back.open_from_list(conversation_id)
    back.expect_live_panel(title)
    page = back.page
    expect(page.get_by_test_id("status")).to_have_text("scheduled")
    expect(page.get_by_test_id("warming-toggle")).to_be_checked()
    warms_shown = int(page.get_by_test_id("warm-cost").get_attribute("data-warms") or 0)
    assert warms_shown >= warms_before + 2
    last_shown = _int_attr(page, "last-warm", "data-last-warm-at")
    assert last_shown is not None and last_shown > closed_at_ms
    expect(page.get_by_test_id("last-warm")).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    expect(page.get_by_test_id("countdown")).to_have_text(re.compile(r"^(in \d+ s|waiting…)$"))
    # The history is there too, rendered the same way.
    history = page.locator("[data-testid=message-assistant][data-status=sealed] .msg-text")
    expect(history.locator("h2")).to_have_text("Caching, briefly")
    page.screenshot(path=str(SCREENSHOTS / "come-back.png"), full_page=True)

    page.get_by_test_id("tab-close").click()
    page.get_by_test_id("close-confirm").click()
    expect(page.get_by_test_id("tab")).to_have_count(0)
    back.close()
    conversation = _api(devstack, "GET", f"/conversations/{conversation_id}")
    assert conversation["warming"]["enabled"] is False
    assert errors_before == [] and back.errors == [], (errors_before, back.errors)


def test_a_reply_too_large_for_one_frame_still_ends_on_the_page(
    devstack: dict[str, Any], browser: Browser
) -> None:
    """API Gateway refuses pushes over 128 KB (the local gateway too). The backend never pushes
    one: the `turn-sealed` of a long reply carries what fits (`textTruncated`), and the page
    shows the whole reply from the deltas and reads it over HTTP."""
    words = 1000  # within a conversation's default max tokens: one word is one token
    big_reply = " ".join(f"w{i:04d}" + "x" * 145 for i in range(words))
    assert len(big_reply.encode()) > 128 * 1024
    pace = _emulator_config(devstack, {})["tokens_per_second"]
    _emulator_config(devstack, {"reply_text": big_reply, "tokens_per_second": 0})
    try:
        session = Session(browser, devstack, "browser-test/large-reply")
        page = session.page
        page.get_by_test_id("new-conversation").click()
        expect(page.get_by_test_id("tab")).to_have_count(1)
        conversation_id = page.get_by_test_id("tab").get_attribute("data-conversation-id")
        page.get_by_test_id("composer").fill("A very long answer, please.")
        page.get_by_test_id("send").click()
        reply = page.locator("[data-testid=message-assistant][data-status=sealed]")
        expect(reply).to_have_count(1, timeout=30_000)
    finally:
        _emulator_config(devstack, {"reply_text": None, "tokens_per_second": pace})
    shown = reply.locator(".msg-text").inner_text()
    assert shown.replace("\n", " ").split() == big_reply.split()
    # No push was refused: the backend kept every frame within the limit.
    log = Path(devstack["stderrLog"]).read_text(errors="replace")
    assert "PayloadTooLargeException" not in log
    page.get_by_test_id("tab-close").click()
    expect(page.get_by_test_id("tab")).to_have_count(0)
    session.close()
    assert _api(devstack, "GET", f"/conversations/{conversation_id}")["turns"][0]["status"] == (
        "sealed"
    )
    assert session.errors == [], session.errors
