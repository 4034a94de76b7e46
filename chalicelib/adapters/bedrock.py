"""Claude on Amazon Bedrock through InvokeModel: the anthropic SDK's `AnthropicBedrock` client,
signed with SigV4 by the function's role (boto3's default credential chain).

Why InvokeModel for every model (docs/models.md "Amazon Bedrock"): it serves all of the catalog,
Opus 4.7 and later included ("Claude Opus 4.7 is reachable through InvokeModel on
bedrock-runtime", Anthropic's legacy Bedrock page, read 2026-12-07), in every region Claude is
offered, with `bedrock:InvokeModel*` on named profiles and models.

What differs from Anthropic's API, each from anthropic 2.10.0's source (`lib/bedrock/_client.py`):
- The model id is Bedrock's (`catalog/bedrock.py`: `global.anthropic.claude-...`); the SDK moves
  it into the path `/model/{id}/invoke[-with-response-stream]`.
- The SDK puts `anthropic_version: "2026-10-21"` in the body with `setdefault`, which older models
  refuse (400); `extra_body` is merged first (`_base_client._merge_extra_json`), so ours,
  `bedrock-2023-05-31`, the value AWS documents for bedrock-runtime, is what is sent.
- Errors arrive as Bedrock's shapes, named in the `x-amzn-ErrorType` header (a 4xx/5xx) or, mid-
  stream, as the SSE `error` event the SDK makes of an exception frame (`_stream_decoder.py`):
  `BEDROCK_CODES` maps each shape of botocore's bedrock-runtime model to our stable codes.
- `messages.count_tokens` raises ("Token counting is not supported in Bedrock yet"), so a cut
  reply's output is counted without it (`_count_tokens`).
- Whether InvokeModel reports `cache_creation` (the 5 min / 1 h split) is unverified: without it,
  every created token is priced at the TTL the prompt's breakpoints asked for (`usage_of`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.adapters.model import AnthropicModel, error_code, usage_from
from chalicelib.domain.catalog.bedrock import bedrock_id
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import Prompt

BEDROCK_VERSION = "bedrock-2023-05-31"

# botocore 1.44.8 bedrock-runtime service-2.json, the errors of InvokeModel and
# InvokeModelWithResponseStream (status in brackets), and our code for each.
BEDROCK_CODES: dict[str, str] = {
    "ThrottlingException": "rate_limited",  # 429
    # 400: "Your request exceeds the service quota for your account" (troubleshooting page): a
    # quota, like a rate limit, waits for the account's window.
    "ServiceQuotaExceededException": "rate_limited",
    # 429, "not ready to serve inference requests" (the SDKs retry it): busy, like a 529.
    "ModelNotReadyException": "overloaded",
    "ServiceUnavailableException": "overloaded",  # 503, Bedrock's nearest to Anthropic's 529
    "AccessDeniedException": "model_unavailable",  # 403: the role may not invoke this model
    "ResourceNotFoundException": "model_unavailable",  # 404
    "ModelTimeoutException": "timeout",  # 408
    "ValidationException": "model_rejected",  # 400 (context and unknown ids: below)
    "ModelErrorException": "upstream_error",  # 424
    "ModelStreamErrorException": "upstream_error",  # 424, mid-stream
    "InternalServerException": "upstream_error",  # 500
}
# ValidationException's texts for a prompt over the window: Bedrock's own and the model's, relayed
# ("Input is too long for requested model.", aws-samples/bedrock-chat#95; "The model returned the
# following errors: prompt is too long: ...", aaif-goose/goose#7504; read 2026-12-07).
_CONTEXT_REFUSALS = ("input is too long", "prompt is too long", "exceed context limit")
# An id Bedrock does not serve here: "The provided model identifier is invalid." (user reports).
_UNKNOWN_MODEL = "model identifier is invalid"


def bedrock_shape(error: Exception) -> str | None:
    """The Bedrock error shape behind an SDK error, e.g. `ThrottlingException`; None if none."""
    response = getattr(error, "response", None)
    header = response.headers.get("x-amzn-errortype", "") if response is not None else ""
    if header:
        return str(header).partition(":")[0]
    body = getattr(error, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    kind = inner.get("type") if isinstance(inner, dict) else None
    if isinstance(kind, str) and kind:
        # A stream's exception frame names the union member: `throttlingException`.
        return kind[0].upper() + kind[1:]
    return None


def bedrock_error_code(error: Exception) -> str:
    shape = bedrock_shape(error)
    if shape is None:
        # A transport error, a timeout: the SDK's own classes, as on Anthropic's API.
        return error_code(error)
    text = str(error).lower()
    if shape == "ValidationException" and any(m in text for m in _CONTEXT_REFUSALS):
        return "context_window_exceeded"
    if shape == "ValidationException" and _UNKNOWN_MODEL in text:
        return "model_unavailable"
    return BEDROCK_CODES.get(shape, "upstream_error")


class BedrockModel(AnthropicModel):
    @classmethod
    def for_bedrock(cls, region: str, scope: str, base_url: str | None) -> BedrockModel:
        import anthropic

        client = anthropic.AnthropicBedrock(aws_region=region, base_url=base_url or None)
        return cls(client, wire_id=lambda model: bedrock_id(model, scope))

    def body(self, prompt: Prompt, max_tokens: int | None = None) -> dict[str, Any]:
        body = super().body(prompt, max_tokens)
        body["extra_body"] = {"anthropic_version": BEDROCK_VERSION}
        return body

    def error_code(self, error: Exception) -> str:
        return bedrock_error_code(error)

    def usage_of(self, raw: Any, prompt: Prompt) -> Usage:
        usage = usage_from(raw)
        split = usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens
        if usage.cache_creation_input_tokens and not split and _asks_one_hour(prompt):
            # No split reported: price the writes at the TTL that was asked for (the dearer
            # one when it is 1 h, so the budget never under-counts).
            return replace(usage, cache_creation_1h_input_tokens=usage.cache_creation_input_tokens)
        return usage

    def _count_tokens(self, model: str, text: str) -> int:
        # No count_tokens through AnthropicBedrock: a token is at least one byte of UTF-8 in a
        # byte-level tokenizer (an assumption), so the byte count bounds it from above.
        return len(text.encode())


def _asks_one_hour(prompt: Prompt) -> bool:
    blocks: list[Any] = [*prompt.system]
    for message in prompt.messages:
        content = message.get("content")
        blocks.extend(content if isinstance(content, list) else [])
    return any(
        isinstance(block, dict) and (block.get("cache_control") or {}).get("ttl") == "1h"
        for block in blocks
    )
