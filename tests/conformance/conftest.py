"""Where the model contract runs: the local emulator (default, in `make test`) or the real
Anthropic API (`make conformance`, with ANTHROPIC_API_KEY).

    CONFORMANCE_TARGET=anthropic   run against api.anthropic.com (or ANTHROPIC_BASE_URL)
    CONFORMANCE_MODELS=a,b         model ids to check (default: the product's default model
                                   against the real API, every catalog model against the emulator)

Before a live run starts, the expected cost of the whole run is printed from today's prices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from chalicelib.adapters.model import AnthropicModel
from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.config import DEFAULT_MODEL
from chalicelib.domain import catalog
from tests.conformance.scenario import planned_usage

LIVE = os.environ.get("CONFORMANCE_TARGET", "emulator") == "anthropic"


def models() -> list[str]:
    listed = [m.strip() for m in os.environ.get("CONFORMANCE_MODELS", "").split(",") if m.strip()]
    if listed:
        return listed
    return [DEFAULT_MODEL] if LIVE else [facts.id for facts in catalog.CATALOG]


@dataclass
class Target:
    name: str
    client: anthropic.Anthropic
    # The emulator behind the client, when it is one (fault injection).
    emulator: Any = None

    @property
    def adapter(self) -> AnthropicModel:
        return AnthropicModel(self.client)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_id" in metafunc.fixturenames:
        metafunc.parametrize("model_id", models(), scope="module")


def pytest_report_header(config: pytest.Config) -> str:
    return f"conformance target: {'the Anthropic API' if LIVE else 'the emulator'}"


def expected_cost_usd() -> float:
    prices = GenaiPriceBook()
    now = int(time.time() * 1000)
    return sum(prices.cost_usd(m, u, now) for m in models() for u in planned_usage(m))


def pytest_sessionstart(session: pytest.Session) -> None:
    if LIVE:
        # Said before anything is sent, so an operator can stop a run that costs too much.
        print(
            f"\nconformance: {len(models())} model(s) {', '.join(models())}; expected cost at "
            f"most {100 * expected_cost_usd():.2f} cents (today's prices)",
            flush=True,
        )


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    if LIVE:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            pytest.exit("ANTHROPIC_API_KEY is not set: the live conformance run needs it", 2)
        yield Target("anthropic", anthropic.Anthropic(max_retries=2))
        return
    from devstack.anthropic import AnthropicEmulator, EmulatorConfig

    config = EmulatorConfig(tokens_per_second=0, reply_tokens=30)
    with AnthropicEmulator(config=config) as emulator:
        client = anthropic.Anthropic(api_key="conformance", base_url=emulator.url, max_retries=0)
        yield Target("emulator", client, emulator)
