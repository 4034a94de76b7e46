"""The local stack's web page, driven in Debian's headless Chromium with Playwright.

One user journey: create a conversation, stream a reply, set a 20 s interval, enable warming,
watch the countdown run out and a warm happen (the countdown re-arms, "last warm" updates), take
screenshots, close the tab and check on the API that warming is off and the conversation closed.

Playwright cannot download its browsers here (the machine is offline): the test drives
/usr/bin/chromium, which `make test` installs through scripts/install-browser.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

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


def _api(endpoints: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        endpoints["httpUrl"].rstrip("/") + path,
        method=method,
        headers={"Authorization": f"Bearer {endpoints['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def _int_attr(page: Page, testid: str, name: str) -> int | None:
    value = page.get_by_test_id(testid).get_attribute(name)
    return int(value) if value else None


def test_page_chats_warms_and_closes(devstack: dict[str, Any]) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium package. "
            "`make test` installs it (scripts/install-browser.sh); or run "
            "`bash scripts/install-browser.sh` yourself."
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page_errors: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(devstack["httpUrl"].rstrip("/") + "/")
            expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")

            # A new conversation opens as a tab with its warming panel (warming off by default).
            page.get_by_test_id("new-conversation").click()
            tab = page.get_by_test_id("tab")
            expect(tab).to_have_count(1)
            conversation_id = tab.get_attribute("data-conversation-id")
            assert conversation_id
            expect(page.get_by_test_id("status")).to_have_text("off")
            expect(page.get_by_test_id("countdown")).to_have_text("—")

            # A message streams a reply that ends sealed, with its usage.
            page.get_by_test_id("composer").fill("Hello! What can prompt caching do for me?")
            page.get_by_test_id("send").click()
            reply = page.locator("[data-testid=message-assistant][data-status=sealed]")
            expect(reply).to_have_count(1, timeout=30_000)
            assert reply.locator(".msg-text").inner_text().strip()
            expect(reply.get_by_test_id("turn-usage")).to_contain_text("cache")
            expect(page.get_by_test_id("cancel")).to_be_hidden()

            # Interval 20 s, then warming on: a countdown to a future warm.
            page.get_by_test_id("interval-input").fill(str(INTERVAL_SECONDS))
            page.get_by_test_id("interval-apply").click()
            expect(page.get_by_test_id("interval-input")).to_have_value(str(INTERVAL_SECONDS))
            expect(page.get_by_test_id("interval-error")).to_have_text("")
            page.get_by_test_id("warming-toggle").check()
            expect(page.get_by_test_id("warming-toggle")).to_be_checked()
            expect(page.get_by_test_id("status")).to_have_text("scheduled")
            countdown = page.get_by_test_id("countdown")
            expect(countdown).to_have_text(re.compile(r"^in \d+ s$"))
            first_next = _int_attr(page, "countdown", "data-next-warm-at")
            assert first_next is not None
            assert page.get_by_test_id("last-warm").inner_text() == "never"

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
                    const last = document.querySelector('[data-testid=last-warm]')
                        .dataset.lastWarmAt;
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
            expect(page.get_by_test_id("last-warm")).to_have_text(
                re.compile(r"^(just now|\d+ s ago)$")
            )
            expect(page.get_by_test_id("status")).to_have_text("scheduled")
            expect(page.get_by_test_id("cache-pct")).to_have_text(re.compile(r"^\d+\.\d %$"))
            assert int(page.get_by_test_id("warm-cost").get_attribute("data-warms") or 0) >= 1
            expect(page.get_by_test_id("warm-cost")).to_contain_text("$")
            texts: list[str] = page.evaluate("window.__countdownTexts")
            assert "in 0 s" not in texts, texts
            assert waited < INTERVAL_SECONDS + 10, f"the warm came {waited:.1f} s after enabling"

            # Screenshots: the panel and the whole page; the page one is the README's picture.
            page.wait_for_timeout(1500)  # "last warm" reads "1 s ago", the countdown has moved
            page.get_by_test_id("warming-panel").screenshot(path=str(SCREENSHOTS / "panel.png"))
            page.screenshot(path=str(SCREENSHOTS / "page.png"), full_page=True)
            if os.environ.get("UPDATE_README_SCREENSHOT"):
                # Opt-in, so a test run never leaves a tracked file modified.
                shutil.copyfile(SCREENSHOTS / "page.png", README_SCREENSHOT)

            # The tab's x closes the conversation: warming off, status closed, the tab gone.
            page.get_by_test_id("tab-close").click()
            expect(page.get_by_test_id("tab")).to_have_count(0)
            item = page.locator(
                f"[data-testid=conversation-item][data-conversation-id='{conversation_id}']"
            )
            expect(item).to_contain_text("closed")
            page.screenshot(path=str(SCREENSHOTS / "closed.png"), full_page=True)
        finally:
            browser.close()

    conversation = _api(devstack, "GET", f"/conversations/{conversation_id}")
    assert conversation["closed"] is True
    assert conversation["warming"]["enabled"] is False
    assert conversation["warming"]["status"] == "closed"
    assert conversation["warming"]["nextWarmAt"] is None
    assert [turn["status"] for turn in conversation["turns"]] == ["sealed"]
    assert page_errors == [], page_errors
