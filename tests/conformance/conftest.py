"""Where the model contract runs: the local emulator and the Bedrock stand-in (default, in
`make test`), or a real provider (`make conformance`, with its credentials).

    CONFORMANCE_TARGET=anthropic   run against api.anthropic.com (or ANTHROPIC_BASE_URL)
    CONFORMANCE_TARGET=bedrock     run against Amazon Bedrock (AWS credentials from boto3's chain,
                                   AWS_REGION, BEDROCK_SCOPE=global|us|eu|...)
    CONFORMANCE_MODELS=a,b         model ids to check (default: the product's default model
                                   against a real provider, every catalog model locally)

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

from chalicelib.adapters.bedrock import BedrockModel
from chalicelib.adapters.model import AnthropicModel
from chalicelib.adapters.prices import GenaiPriceBook
from chalicelib.config import DEFAULT_MODEL
from chalicelib.domain import catalog
from chalicelib.domain.catalog.bedrock import bedrock_id
from tests.conformance.scenario import planned_usage

TARGET = os.environ.get("CONFORMANCE_TARGET", "local")
LIVE = TARGET in ("anthropic", "bedrock")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
SCOPE = os.environ.get("BEDROCK_SCOPE", "global")
# Locally both providers run: the Anthropic emulator and the Bedrock stand-in.
PROVIDERS = [TARGET] if LIVE else ["anthropic", "bedrock"]


def models() -> list[str]:
    listed = [m.strip() for m in os.environ.get("CONFORMANCE_MODELS", "").split(",") if m.strip()]
    if listed:
        return listed
    return [DEFAULT_MODEL] if LIVE else [facts.id for facts in catalog.CATALOG]


@dataclass
class Target:
    name: str  # "anthropic" | "bedrock"
    client: Any  # anthropic.Anthropic or anthropic.AnthropicBedrock
    # The emulator (or stand-in) behind the client, when it is one (fault injection).
    emulator: Any = None

    @property
    def adapter(self) -> AnthropicModel:
        if self.name == "bedrock":
            return BedrockModel(self.client, wire_id=lambda model: bedrock_id(model, SCOPE))
        return AnthropicModel(self.client)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "provider" in metafunc.fixturenames:
        metafunc.parametrize("provider", PROVIDERS, scope="session")
    if "model_id" in metafunc.fixturenames:
        metafunc.parametrize("model_id", models(), scope="module")


def pytest_report_header(config: pytest.Config) -> str:
    where = {"anthropic": "the Anthropic API", "bedrock": f"Amazon Bedrock ({REGION}, {SCOPE})"}
    return f"conformance target: {where.get(TARGET, 'the emulator and the Bedrock stand-in')}"


def expected_cost_usd() -> float:
    if TARGET == "bedrock":
        prices = GenaiPriceBook("aws", lambda model: bedrock_id(model, SCOPE))
    else:
        prices = GenaiPriceBook()
    now = int(time.time() * 1000)
    return sum(prices.cost_usd(m, u, now) for m in models() for u in planned_usage(m))


def pytest_sessionstart(session: pytest.Session) -> None:
    if LIVE:
        # Said before anything is sent, so an operator can stop a run that costs too much.
        print(
            f"\nconformance ({TARGET}): {len(models())} model(s) {', '.join(models())}; expected "
            f"cost at most {100 * expected_cost_usd():.2f} cents (today's prices)",
            flush=True,
        )


def _live(name: str) -> Target:
    if name == "bedrock":
        return Target("bedrock", anthropic.AnthropicBedrock(aws_region=REGION, max_retries=2))
    if not os.environ.get("ANTHROPIC_API_KEY"):
        pytest.exit("ANTHROPIC_API_KEY is not set: the live conformance run needs it", 2)
    return Target("anthropic", anthropic.Anthropic(max_retries=2))


@pytest.fixture(scope="session")
def target(provider: str) -> Iterator[Target]:
    if LIVE:
        yield _live(provider)
        return
    from devstack.anthropic import AnthropicEmulator, EmulatorConfig
    from devstack.bedrock import BedrockStandIn

    config = EmulatorConfig(tokens_per_second=0, reply_tokens=30)
    if provider == "bedrock":
        with BedrockStandIn(config=config) as standin:
            bedrock = anthropic.AnthropicBedrock(
                aws_region=REGION, base_url=standin.url, max_retries=0
            )
            yield Target("bedrock", bedrock, standin)
        return
    with AnthropicEmulator(config=config) as emulator:
        client = anthropic.Anthropic(api_key="conformance", base_url=emulator.url, max_retries=0)
        yield Target("anthropic", client, emulator)
