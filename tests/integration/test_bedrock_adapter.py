"""The Bedrock adapter against the local Bedrock stand-in, through the real anthropic SDK
(`AnthropicBedrock`, SigV4-signed with the test credentials; nothing in the SDK is patched)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.adapters.bedrock import BedrockModel
from chalicelib.domain.prompts import Prompt
from chalicelib.ports import ModelError
from devstack.anthropic import EmulatorConfig
from devstack.bedrock import BedrockError, BedrockStandIn
from tests.helpers import adapter_prompts

PROMPTS = adapter_prompts(1800)
SYSTEM, MESSAGES, WARM, TURN = PROMPTS.system, PROMPTS.messages, PROMPTS.warm, PROMPTS.turn
HOUR = {"type": "ephemeral", "ttl": "1h"}


@pytest.fixture
def standin() -> Iterator[BedrockStandIn]:
    config = EmulatorConfig(tokens_per_second=0, reply_tokens=20)
    with BedrockStandIn(config=config) as stand_in:
        yield stand_in


def model_for(standin: BedrockStandIn, scope: str = "global") -> BedrockModel:
    return BedrockModel.for_bedrock("us-east-1", scope, standin.url)


def test_a_warm_goes_to_the_profile_with_bedrocks_version_and_max_tokens_zero(
    standin: BedrockStandIn,
) -> None:
    model = model_for(standin)
    first = model.warm(WARM)
    second = model.warm(WARM)
    sent = standin.stats.requests[0]
    assert sent["model"] == "global.anthropic.claude-sonnet-4-6"
    assert (sent["anthropic_version"], sent["max_tokens"], sent["stream"]) == (
        "bedrock-2023-05-31",
        0,
        False,
    )
    assert first.cache_creation_input_tokens > 4000 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0


def test_a_regional_scope_sends_the_base_model_id(standin: BedrockStandIn) -> None:
    model_for(standin, scope="").warm(WARM)
    assert standin.stats.requests[0]["model"] == "anthropic.claude-sonnet-4-6"


def test_a_refused_max_tokens_zero_is_warmed_with_one_once(standin: BedrockStandIn) -> None:
    standin.refuse_zero_max_tokens = True
    model = model_for(standin)
    model.warm(WARM)
    model.warm(WARM)
    assert [r["max_tokens"] for r in standin.stats.requests] == [0, 1, 1]
    assert [r["error"] for r in standin.stats.requests] == ["ValidationException", None, None]


def test_a_turn_streams_over_event_stream_frames_and_reads_the_warm(
    standin: BedrockStandIn,
) -> None:
    model = model_for(standin)
    warmed = model.warm(WARM)
    texts: list[str] = []
    result = model.stream(TURN, texts.append, lambda: False)
    assert not result.aborted and len(texts) == 20 and result.text == "".join(texts)
    assert result.usage is not None and result.usage.output_tokens == 20
    assert result.usage.cache_read_input_tokens >= warmed.cache_creation_input_tokens - 10


def test_without_a_reported_split_one_hour_writes_are_priced_as_one_hour(
    standin: BedrockStandIn,
) -> None:
    hour_system = [{**SYSTEM[0], "cache_control": HOUR}]
    usage = model_for(standin).warm(Prompt(WARM.model, 0, hour_system, WARM.messages))
    assert usage.cache_creation_input_tokens > 4000
    assert usage.cache_creation_1h_input_tokens == usage.cache_creation_input_tokens


def test_a_reported_split_is_taken_as_reported(standin: BedrockStandIn) -> None:
    standin.report_ttl_split = True
    usage = model_for(standin).warm(WARM)
    assert usage.cache_creation_5m_input_tokens == usage.cache_creation_input_tokens > 4000
    assert usage.cache_creation_1h_input_tokens == 0


@pytest.mark.parametrize(
    ("status", "shape", "message", "code"),
    [
        (429, "ThrottlingException", "Too many requests", "rate_limited"),
        (503, "ServiceUnavailableException", "Service unavailable", "overloaded"),
        (429, "ModelNotReadyException", "Model is not ready", "overloaded"),
        (400, "ServiceQuotaExceededException", "Quota exceeded", "rate_limited"),
        (403, "AccessDeniedException", "not authorized to perform", "model_unavailable"),
        (404, "ResourceNotFoundException", "Model not found", "model_unavailable"),
        (408, "ModelTimeoutException", "Model timed out", "timeout"),
        (424, "ModelErrorException", "The model failed", "upstream_error"),
        (500, "InternalServerException", "Internal", "upstream_error"),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            "context_window_exceeded",
        ),
        (400, "ValidationException", "Malformed input request", "model_rejected"),
    ],
)
def test_every_bedrock_error_maps_to_a_stable_code(
    standin: BedrockStandIn, status: int, shape: str, message: str, code: str
) -> None:
    standin.fail_next(BedrockError(status, shape, message))
    with pytest.raises(ModelError) as failed:
        model_for(standin).warm(WARM)
    assert failed.value.code == code
    assert [r["status"] for r in standin.stats.requests] == [status]  # the warm never retries


def test_an_unknown_model_is_model_unavailable(standin: BedrockStandIn) -> None:
    with pytest.raises(ModelError) as failed:
        model_for(standin).warm(Prompt("claude-nope-0", 0, SYSTEM, WARM.messages))
    assert failed.value.code == "model_unavailable"
    assert "model identifier is invalid" in str(failed.value)


def test_an_error_frame_mid_stream_is_upstream_error_with_what_was_billed(
    standin: BedrockStandIn,
) -> None:
    standin.set_fault("stream_error", count=1, after_deltas=3)
    texts: list[str] = []
    with pytest.raises(ModelError) as failed:
        model_for(standin).stream(TURN, texts.append, lambda: False)
    assert failed.value.code == "upstream_error"
    assert len(texts) == 3
    assert failed.value.usage is not None and failed.value.usage.prompt_tokens > 4000


def test_a_cut_turn_counts_its_output_without_count_tokens(standin: BedrockStandIn) -> None:
    standin.apply_config({"tokens_per_second": 40, "reply_tokens": 300})
    texts: list[str] = []
    result = model_for(standin).stream(TURN, texts.append, lambda: len(texts) >= 2)
    assert result.aborted and result.usage is not None
    # One token per UTF-8 byte of what the SDK had received (a little more than was shown): an
    # upper bound, with no request to count them.
    assert len(result.text.encode()) <= result.usage.output_tokens < 300 * 3
    assert len(standin.stats.requests) == 1
