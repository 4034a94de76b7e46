#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (tests/e2e/test_browser.py).
# Playwright's own browser download is impossible offline: the test drives /usr/bin/chromium.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-browser: /usr/bin/chromium missing, installing Debian's chromium" >&2
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
