"""The client README's snippet runs as written (issue 21): extracted, type-checked with the
package's own `tsc` (strict, against the built declarations), compiled, and run in headless
Chromium against the local stack, with only its three "yours" values (two URLs, the JWT)
supplied by the test."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("devstack")]

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
TSC = CLIENT / "node_modules" / ".bin" / "tsc"
IMPORTS = {
    '"@cache-warming/client/markdown"': '"/client/markdown.js"',
    '"@cache-warming/client"': '"/client/index.js"',
}


def readme_snippet() -> str:
    readme = (CLIENT / "README.md").read_text()
    match = re.search(r"^## Use\n.*?^```ts\n(.*?)^```", readme, re.S | re.M)
    assert match, "clients/js/README.md has no ```ts block under ## Use"
    return match.group(1)


def compile_snippet(directory: Path, source: str) -> subprocess.CompletedProcess[str]:
    (directory / "snippet.ts").write_text(source)
    paths = {
        "@cache-warming/client": [str(CLIENT / "dist" / "index.d.ts")],
        "@cache-warming/client/markdown": [str(CLIENT / "dist" / "markdown.d.ts")],
    }
    options = {
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "Bundler",
        "lib": ["ES2022", "DOM"],
        "strict": True,
        "skipLibCheck": True,
        "types": [],
        "outDir": "out",
        "paths": paths,
    }
    config = {"compilerOptions": options, "files": ["snippet.ts"]}
    (directory / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [str(TSC), "-p", str(directory / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_type_check_would_catch_a_wrong_snippet(tmp_path: Path) -> None:
    if not (CLIENT / "dist" / "index.d.ts").is_file():
        pytest.fail("clients/js is not built: `make test` builds it (`make client`)")
    wrong = readme_snippet().replace("panel.status", "panel.statuz")
    result = compile_snippet(tmp_path, wrong)
    assert result.returncode != 0 and "statuz" in result.stdout


def test_the_readme_snippet_type_checks_and_runs(devstack: dict[str, Any], tmp_path: Path) -> None:
    source = readme_snippet()
    for placeholder in ('"https://…/api"', '"wss://…/api"'):
        assert placeholder in source, placeholder
    result = compile_snippet(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = (tmp_path / "out" / "snippet.js").read_text()
    compiled = compiled.replace('"https://…/api"', json.dumps(devstack["httpUrl"]))
    compiled = compiled.replace('"wss://…/api"', json.dumps(devstack["wsUrl"]))
    for name, served in IMPORTS.items():
        compiled = compiled.replace(name, served)
    compiled += "\nwindow.__snippetDone = true;\n"

    errors: list[str] = []
    logs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: logs.append(message.text))
            page.goto(devstack["httpUrl"].rstrip("/") + "/health")
            page.evaluate("(jwt) => sessionStorage.setItem('jwt', jwt)", devstack["token"])
            page.add_script_tag(content=compiled, type="module")
            page.wait_for_function("window.__snippetDone === true", timeout=60_000)
            rendered = page.locator("body").inner_text()
        finally:
            browser.close()
    assert errors == [], errors
    # What it printed: the panel's status, the countdown, the net, the history's entries. The
    # snippet's prompt is below the model's minimum cacheable length: warming is on but has
    # nothing to keep (docs/contract.md, `not-cacheable`), so no warm is booked.
    printed = [entry.split(" ") for entry in logs if entry.startswith("not-cacheable ")]
    assert len(printed) == 1, logs
    status, countdown, net, entries, older = printed[0]
    assert (status, countdown, older) == ("not-cacheable", "—", "0"), logs
    # The net is the user's across all conversations (`GET /savings`), and the tests before this
    # one on the same stack and user have warmed: only its type is this snippet's. That no warm
    # was sent for this conversation is its history: one entry, the sealed turn.
    float(net)
    assert int(entries) == 1  # the sealed turn
    assert rendered.strip(), "the reply was not rendered"
