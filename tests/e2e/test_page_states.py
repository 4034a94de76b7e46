"""The page's states the first journey (tests/e2e/test_browser.py) does not reach, each with its
screenshot under artifacts/screenshots/ (issue 21):

* ``paused-resume.png``: warming stopped at a resumable status (`error`: three warms in a row
  refused upstream, injected in the Anthropic emulator) shows why, and a one-click Resume;
* ``close-confirm.png``: the tab's x on a streaming reply asks first, and says what it stopped;
* ``1024x768.png`` and ``phone.png`` (390x844): the list, the panel and the chart all usable, the
  countdown on one line;
* ``rescue.png``: a rescue as the contract describes it. A real one needs the user back after
  the 5-minute TTL (tests/integration/test_savings_moto.py and the service tests check the rule);
  here the page is handed the contract's own history example (docs/contract.md, "History") and a
  savings field with that rescue, through Playwright's routing, so what is checked is how the
  page renders them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect

from tests.e2e.test_browser import (
    INTERVAL_SECONDS,
    ROOT,
    SCREENSHOTS,
    WARM_TIMEOUT_MS,
    Session,
    _api,
    _emulator_config,
    assert_one_line,
    browser,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]
__all__ = ["browser"]  # the fixture, shared

RESCUE_SAVINGS = {"spentUsd": 0.00293, "savedUsd": 0.01224, "netUsd": 0.00931, "rescues": 1}


def chat_and_warm(page: Page) -> str:
    """A new conversation with one sealed reply and warming on at the shortest interval."""
    page.get_by_test_id("new-conversation").click()
    expect(page.get_by_test_id("tab")).to_have_count(1)
    conversation_id = page.get_by_test_id("tab").get_attribute("data-conversation-id") or ""
    page.get_by_test_id("composer").fill("Tell me about caching.")
    page.get_by_test_id("send").click()
    reply = page.locator("[data-testid=message-assistant][data-status=sealed]")
    expect(reply).to_have_count(1, timeout=30_000)
    page.get_by_test_id("interval-input").fill(str(INTERVAL_SECONDS))
    page.get_by_test_id("interval-apply").click()
    expect(page.get_by_test_id("interval-input")).to_have_value(str(INTERVAL_SECONDS))
    page.get_by_test_id("warming-toggle").check()
    expect(page.get_by_test_id("status")).to_have_text("scheduled")
    return conversation_id


def close_confirmed(page: Page) -> None:
    page.get_by_test_id("tab-close").click()
    page.get_by_test_id("close-confirm").click()
    expect(page.get_by_test_id("tab")).to_have_count(0)


def test_a_resumable_stop_says_why_and_resumes_in_one_click(
    devstack: dict[str, Any], browser: Browser
) -> None:
    session = Session(browser, devstack, "browser-test/resume")
    page = session.page
    conversation_id = chat_and_warm(page)
    expect(page.get_by_test_id("resume")).to_be_hidden()
    # Every request refused (500) from now on: the next warm and its two retries fail.
    _emulator_config(devstack, {"fault": {"kind": "api_error", "count": None}})
    try:
        expect(page.get_by_test_id("status")).to_have_text("error", timeout=WARM_TIMEOUT_MS)
    finally:
        _emulator_config(devstack, {"fault": None})
    expect(page.get_by_test_id("warming-toggle")).to_be_checked()  # still on: only stopped
    expect(page.get_by_test_id("resume")).to_be_visible()
    expect(page.get_by_test_id("status-why")).to_contain_text("failed upstream")
    expect(page.get_by_test_id("countdown")).to_have_text("—")
    page.screenshot(path=str(SCREENSHOTS / "paused-resume.png"))
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("resume")).to_be_hidden()
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^(scheduled|warming)$"))
    expect(page.get_by_test_id("countdown")).to_have_text(re.compile(r"^(in \d+ s|waiting…)$"))
    assert _api(devstack, "GET", f"/conversations/{conversation_id}")["warming"]["enabled"]
    close_confirmed(page)
    session.close()
    assert session.errors == [], session.errors


def test_closing_a_streaming_reply_asks_and_says_what_it_stopped(
    devstack: dict[str, Any], browser: Browser
) -> None:
    pace = _emulator_config(devstack, {})["tokens_per_second"]
    _emulator_config(devstack, {"tokens_per_second": 4})  # a reply of a minute or more
    try:
        session = Session(browser, devstack, "browser-test/close-streaming")
        page = session.page
        page.get_by_test_id("new-conversation").click()
        conversation_id = page.get_by_test_id("tab").get_attribute("data-conversation-id")
        page.get_by_test_id("composer").fill("A long answer, please.")
        page.get_by_test_id("send").click()
        streaming = page.locator("[data-testid=message-assistant][data-status=generating]")
        expect(streaming).to_have_count(1, timeout=10_000)
        page.get_by_test_id("tab-close").click()
        text = page.get_by_test_id("close-dialog-text")
        expect(text).to_contain_text("stops the reply being written")
        expect(text).not_to_contain_text("warming")  # warming was never on
        page.screenshot(path=str(SCREENSHOTS / "close-confirm.png"))
        page.get_by_test_id("close-confirm").click()
        expect(page.get_by_test_id("tab")).to_have_count(0)
        expect(page.get_by_test_id("toast").last).to_contain_text("stopped the reply being written")
        page.screenshot(path=str(SCREENSHOTS / "closed-streaming.png"))
    finally:
        _emulator_config(devstack, {"tokens_per_second": pace})
    for _ in range(50):
        turn = _api(devstack, "GET", f"/conversations/{conversation_id}")["turns"][0]
        if turn["status"] != "generating":
            break
        page.wait_for_timeout(200)
    assert (turn["status"], turn["abortReason"]) == ("aborted", "closed")
    session.close()
    assert session.errors == [], session.errors


def _inside(page: Page, testid: str) -> Any:
    box = page.get_by_test_id(testid).bounding_box()
    assert box is not None, testid
    return box


def test_the_list_the_panel_and_the_chart_fit_1024x768_and_a_phone(
    devstack: dict[str, Any], browser: Browser
) -> None:
    session = Session(browser, devstack, "browser-test/layouts")
    page = session.page
    chat_and_warm(page)
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_timeout(300)
    for testid in ("conversation-list", "history-chart", "warming-panel", "composer"):
        box = _inside(page, testid)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1024, (testid, box)
        assert box["y"] < 768 and box["width"] > 150, (testid, box)  # starts above the fold
    assert_one_line(page, "countdown", "cache-expiry", "last-warm")
    page.screenshot(path=str(SCREENSHOTS / "1024x768.png"))

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    # One column, the page scrolls: nothing shares a small scroll box any more.
    for selector in (".side-column", ".list-column .conversations"):
        sizes = page.locator(selector).evaluate("n => [n.scrollHeight, n.clientHeight]")
        assert sizes[0] <= sizes[1] + 1, (selector, sizes)
    for testid in ("history-chart", "warming-panel", "conversation-list"):
        box = _inside(page, testid)
        assert box["width"] >= 300 and box["x"] + box["width"] <= 390, (testid, box)
    assert _inside(page, "warming-panel")["height"] > 400
    assert_one_line(page, "countdown", "cache-expiry", "last-warm")
    page.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    close_confirmed(page)
    session.close()
    assert session.errors == [], session.errors


def contract_history_example() -> dict[str, Any]:
    prose = (ROOT / "docs" / "contract.md").read_text()
    history = prose[prose.index("### History") :]
    block = re.search(r'```json\n(\{"entries".*?)\n```', history, re.S)
    assert block, "docs/contract.md's History section has no example page"
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def _with_rescue(message: str | bytes, conversation_id: str) -> str | bytes:
    """A surface or update of that conversation, its savings field the rescue's."""
    if isinstance(message, bytes):
        return message
    frame = json.loads(message)
    if frame.get("conversationId") != conversation_id or frame.get("type") not in (
        "surface",
        "update",
    ):
        return message
    fields = frame["spec"]["fields"] if frame["type"] == "surface" else frame["fields"]
    for field in fields:
        if field["id"] == "savings":
            field["value"] = RESCUE_SAVINGS
    return json.dumps(frame)


def test_a_rescue_renders_as_the_contract_describes(
    devstack: dict[str, Any], browser: Browser
) -> None:
    created = _api(devstack, "POST", "/conversations", {"title": "After a rescue"})
    conversation_id = created["conversationId"]
    example = contract_history_example()
    assert any(entry.get("rescue") for entry in example["entries"])

    def route_history(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(example))

    def route_socket(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: ws.send(_with_rescue(message, conversation_id)))

    session = Session.__new__(Session)
    session.agent, session.errors = "browser-test/rescue", []
    session.context = browser.new_context(viewport={"width": 1440, "height": 900})
    session.page = page = session.context.new_page()
    page.on("pageerror", lambda error: session.errors.append(str(error)))
    page.route(f"**/conversations/{conversation_id}/history*", route_history)
    page.route_web_socket(re.compile(r"^ws://"), route_socket)
    page.goto(devstack["httpUrl"].rstrip("/") + "/")
    session.open_from_list(conversation_id)
    session.expect_live_panel("After a rescue")
    expect(page.get_by_test_id("savings-saved")).to_have_text("$0.0122")
    expect(page.get_by_test_id("savings-verdict")).to_have_text("warming paid off")
    expect(page.get_by_test_id("savings")).to_have_attribute("data-rescues", "1")
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_have_attribute("data-rescues", "1")
    expect(chart).to_have_attribute("data-entries", str(len(example["entries"])))
    expect(page.get_by_test_id("history-summary")).to_contain_text("1 rescue ·")
    page.screenshot(path=str(SCREENSHOTS / "rescue.png"))
    session.close()
    _api(devstack, "POST", f"/conversations/{conversation_id}/close")
    assert session.errors == [], session.errors
