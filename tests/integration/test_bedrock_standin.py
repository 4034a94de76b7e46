"""The Bedrock stand-in refuses what Bedrock refuses, in Bedrock's error shapes, and speaks its
wire: checked here with boto3's own bedrock-runtime client (botocore parses the errors and
decodes the event stream, CRCs included) and with raw HTTP where boto3 would not send the request."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError, EventStreamError

from devstack.anthropic import EmulatorConfig
from devstack.bedrock import RULES, BedrockStandIn

PROFILE = "global.anthropic.claude-sonnet-4-6"
LONG = "Be brief. " * 1800


def body(**changes: Any) -> dict[str, Any]:
    base = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "system": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    return {**base, **changes}


@pytest.fixture
def standin() -> Iterator[BedrockStandIn]:
    with BedrockStandIn(config=EmulatorConfig(tokens_per_second=0, reply_tokens=5)) as stand_in:
        yield stand_in


@pytest.fixture
def runtime(standin: BedrockStandIn) -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=standin.url)


def refused(runtime: Any, payload: dict[str, Any], model: str = PROFILE) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        runtime.invoke_model(modelId=model, body=json.dumps(payload))
    return dict(error.value.response["Error"]) | {
        "status": error.value.response["ResponseMetadata"]["HTTPStatusCode"]
    }


def test_invoke_model_answers_a_messages_body_with_its_usage(runtime: Any) -> None:
    first = json.loads(
        runtime.invoke_model(modelId=PROFILE, body=json.dumps(body()))["body"].read()
    )
    again = json.loads(
        runtime.invoke_model(modelId=PROFILE, body=json.dumps(body()))["body"].read()
    )
    assert first["type"] == "message" and first["content"][0]["type"] == "text"
    assert first["usage"]["cache_creation_input_tokens"] > 4000
    assert (
        again["usage"]["cache_read_input_tokens"] == first["usage"]["cache_creation_input_tokens"]
    )


def test_the_stream_is_event_stream_chunks_of_the_messages_events(runtime: Any) -> None:
    answer = runtime.invoke_model_with_response_stream(modelId=PROFILE, body=json.dumps(body()))
    events = [json.loads(part["chunk"]["bytes"]) for part in answer["body"]]
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 5
    assert events[-2]["usage"]["output_tokens"] == 5


def test_a_client_closing_the_stream_early_is_recorded_with_what_was_sent() -> None:
    # The paced loop is the emulator's (StreamingHandler.paced_deltas): a disconnect records how
    # far the stream got, as the Anthropic emulator does.
    config = EmulatorConfig(tokens_per_second=40, reply_tokens=300)
    with BedrockStandIn(config=config) as stand_in:
        runtime = boto3.client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=stand_in.url
        )
        answer = runtime.invoke_model_with_response_stream(
            modelId=PROFILE, body=json.dumps(body(max_tokens=1000))
        )
        deltas = 0
        for part in answer["body"]:
            deltas += json.loads(part["chunk"]["bytes"])["type"] == "content_block_delta"
            if deltas == 3:
                break
        answer["body"].close()
        deadline = time.monotonic() + 2.0
        while stand_in.stats.disconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        record = stand_in.stats.requests[-1]
    assert record["outcome"] == "disconnected"
    assert 3 <= record["deltas_sent"] < 300


def test_an_error_mid_stream_is_an_exception_frame(standin: BedrockStandIn, runtime: Any) -> None:
    standin.set_fault("stream_error", count=1, after_deltas=2)
    answer = runtime.invoke_model_with_response_stream(modelId=PROFILE, body=json.dumps(body()))
    parts: list[Any] = []
    with pytest.raises(EventStreamError) as error:
        parts.extend(answer["body"])
    assert error.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert len(parts) == 4  # message_start, content_block_start, two deltas


@pytest.mark.parametrize("key", ["model", "stream"])
def test_the_path_carries_model_and_stream_and_the_body_may_not(runtime: Any, key: str) -> None:
    error = refused(runtime, body(**{key: PROFILE if key == "model" else True}))
    assert (error["status"], error["Code"]) == (400, "ValidationException")
    assert error["Message"] == RULES["extraneous_key"].message.format(key=key)


def test_anthropic_version_is_required_and_only_bedrocks_value(runtime: Any) -> None:
    missing = body()
    del missing["anthropic_version"]
    error = refused(runtime, missing)
    assert (error["Code"], "required key [anthropic_version]" in error["Message"]) == (
        "ValidationException",
        True,
    )
    error = refused(runtime, body(anthropic_version="2026-10-21"))
    assert error["Code"] == "ValidationException" and "2026-10-21" in error["Message"]


def test_the_sdks_own_version_is_refused_unless_overridden(standin: BedrockStandIn) -> None:
    # anthropic 2.10.0 sets anthropic_version "2026-10-21" by default: the trap the adapter avoids.
    client = anthropic.AnthropicBedrock(aws_region="us-east-1", base_url=standin.url, max_retries=0)
    request = {k: v for k, v in body().items() if k != "anthropic_version"}
    with pytest.raises(anthropic.BadRequestError, match="2026-10-21"):
        client.messages.create(model=PROFILE, **request)
    answer = client.messages.create(
        model=PROFILE, **request, extra_body={"anthropic_version": "bedrock-2023-05-31"}
    )
    assert answer.usage.cache_creation_input_tokens or answer.usage.cache_read_input_tokens


def test_an_unknown_model_id_is_refused_as_bedrock_does(runtime: Any) -> None:
    error = refused(runtime, body(), model="anthropic.claude-nope-0")
    assert (error["status"], error["Code"], error["Message"]) == (
        400,
        "ValidationException",
        "The provided model identifier is invalid.",
    )


def test_the_models_own_refusals_are_relayed_as_validation_errors(runtime: Any) -> None:
    prefill = body(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        ]
    )
    error = refused(runtime, prefill)
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("The model returned the following errors: ")
    assert "prefill" in error["Message"]


def post(url: str, headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body()).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, "", json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["x-amzn-ErrorType"], json.loads(error.read())


def test_an_unsigned_request_is_refused(standin: BedrockStandIn) -> None:
    status, kind, payload = post(f"{standin.url}/model/{PROFILE}/invoke", {})
    assert (status, kind.partition(":")[0]) == (403, "MissingAuthenticationTokenException")
    assert payload == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize("service", ["bedrock-mantle", "s3"])
def test_a_request_signed_for_another_service_is_refused(
    standin: BedrockStandIn, service: str
) -> None:
    url = f"{standin.url}/model/{PROFILE}/invoke"
    aws = botocore.awsrequest.AWSRequest("POST", url, data=json.dumps(body()))
    credentials = botocore.credentials.Credentials("testing", "testing")
    botocore.auth.SigV4Auth(credentials, service, "us-east-1").add_auth(aws)
    status, kind, _ = post(url, dict(aws.headers.items()))
    assert (status, kind.partition(":")[0]) == (400, "IncompleteSignatureException")


def test_opus_4_7_caches_nothing_below_bedrocks_4096_token_minimum(runtime: Any) -> None:
    mid = body(
        system=[{"type": "text", "text": "word " * 3000, "cache_control": {"type": "ephemeral"}}]
    )
    answer = runtime.invoke_model(modelId="global.anthropic.claude-opus-4-7", body=json.dumps(mid))
    usage = json.loads(answer["body"].read())["usage"]
    # ~3,750 tokens: cached on Anthropic's API (2,048), not on Bedrock (4,096).
    assert usage["cache_creation_input_tokens"] == 0 and usage["input_tokens"] > 3000


def test_every_rule_names_its_source() -> None:
    for rule in RULES.values():
        assert rule.source and rule.shape.endswith(("Exception",)) and 400 <= rule.status < 500
