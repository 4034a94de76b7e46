"""The moto-backed application stack, fresh per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import bootstrap
from tests.moto_stack import ENV, MotoStack, build


@pytest.fixture
def stack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    yield build()
    bootstrap.reset()
