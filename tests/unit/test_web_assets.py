"""The vendored chart library is the npm package's files, unmodified: each file's sha256 is the
one its README records (devstack/web/vendor/uplot/README.md), so an edit there is deliberate."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "devstack" / "web" / "vendor" / "uplot"
ROW = re.compile(r"^\| `([^`]+)` \| `[^`]+` \| `([0-9a-f]{64})` \|$", re.MULTILINE)


def test_every_vendored_file_matches_the_hash_its_readme_records() -> None:
    recorded = dict(ROW.findall((VENDOR / "README.md").read_text()))
    assert set(recorded) == {"uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
