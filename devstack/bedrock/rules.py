"""What the Bedrock stand-in refuses, with Bedrock's status, error shape and message, and where
each was read (docs/models.md lists them). Bedrock answers an error with a JSON body
`{"message": ...}` and the shape's name in `x-amzn-ErrorType`, e.g.
`ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/` (a real response quoted
in fumito-ito/AnthropicSwiftSDK#19, 2024-06-26; botocore 1.44.8 `parsers.py` reads the code from
that header for rest-json services). `exact=False`: the stand-in's wording, not Bedrock's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.catalog import bedrock
from chalicelib.domain.catalog.bedrock import BedrockRow
from devstack.anthropic.errors import RequestError
from devstack.anthropic.prompt import MessagesRequest
from devstack.anthropic.rules import parse_messages_request

BEDROCK_VERSION = "bedrock-2023-05-31"
_CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_TROUBLESHOOTING = (
    "https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html"
)
_SWIFT_SDK_19 = "github.com/fumito-ito/AnthropicSwiftSDK/issues/19 (a real 400 quoted, 2024-06-26)"


class BedrockError(Exception):
    """An error answered in Bedrock's shape; `shape` is the botocore error shape's name."""

    def __init__(self, status: int, shape: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.shape = shape
        self.message = message

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": f"{self.shape}:{_CORAL}"}

    def body(self) -> dict[str, Any]:
        return {"message": self.message}

    @property
    def stream_shape(self) -> str:
        """The `ResponseStream` member naming this error in an exception frame."""
        return self.shape[0].lower() + self.shape[1:]


@dataclass(frozen=True)
class BedrockRule:
    key: str
    status: int
    shape: str
    message: str
    source: str
    exact: bool

    def error(self, **fields: Any) -> BedrockError:
        return BedrockError(self.status, self.shape, self.message.format(**fields))


def _rule(key: str, status: int, shape: str, message: str, source: str, exact: bool) -> BedrockRule:
    return BedrockRule(key, status, shape, message, source, exact)


RULES: dict[str, BedrockRule] = {
    rule.key: rule
    for rule in (
        _rule(
            "unsigned",
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            "AWS common errors: MissingAuthenticationToken, HTTP 403",
            False,
        ),
        _rule(
            "bad_signature",
            400,
            "IncompleteSignatureException",
            "The request signature does not conform to AWS standards.",
            f"{_TROUBLESHOOTING} 'IncompleteSignature', HTTP 400",
            True,
        ),
        _rule(
            "unknown_model",
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
            "user reports quoting Bedrock's ValidationException (read 2026-12-07)",
            True,
        ),
        _rule(
            "extraneous_key",
            400,
            "ValidationException",
            "Malformed input request: #: extraneous key [{key}] is not permitted, please reformat "
            "your input and try again.",
            _SWIFT_SDK_19,
            True,
        ),
        _rule(
            "no_version",
            400,
            "ValidationException",
            "Malformed input request: #: required key [anthropic_version] not found, please "
            "reformat your input and try again.",
            "user reports quoting Bedrock (the same 'Malformed input request' form)",
            True,
        ),
        _rule(
            "wrong_version",
            400,
            "ValidationException",
            "Malformed input request: #/anthropic_version: {value} is not a valid enum value, "
            "please reformat your input and try again.",
            "platform.claude.com .../claude-on-amazon-bedrock-legacy: models with ARN-versioned "
            "ids 'do not support 2026-10-21 on Bedrock' and may answer 400; "
            "docs.aws.amazon.com/bedrock/latest/userguide/inference-messages-api.html: "
            'bedrock-runtime takes "anthropic_version": "bedrock-2023-05-31" in the body',
            False,
        ),
        _rule(
            "model_refused",
            400,
            "ValidationException",
            "The model returned the following errors: {message}",
            "aaif-goose/goose#7504 ('The model returned the following errors: prompt is too "
            "long: ...') and BerriAI/litellm#13825: the model's own 400s, relayed",
            True,
        ),
        _rule(
            "zero_max_tokens",
            400,
            "ValidationException",
            "The model returned the following errors: max_tokens: Input should be greater than "
            "or equal to 1",
            "none: whether InvokeModel takes max_tokens 0 is documented nowhere (Converse's "
            "schema says >= 1); off unless `refuse_zero_max_tokens` is set",
            False,
        ),
    )
}


def check_signed(headers: Any) -> None:
    """SigV4 presence, the way anthropic 2.10.0 `lib/aws/_auth.py` signs (service `bedrock`):
    an `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/bedrock/aws4_request`
    and an `X-Amz-Date`. The signature itself is not verified."""
    auth = headers.get("authorization") or ""
    if not auth:
        raise RULES["unsigned"].error()
    credential = auth.partition("Credential=")[2].partition(",")[0].split("/")
    signed = auth.startswith("AWS4-HMAC-SHA256 ") and len(credential) == 5
    if not signed or credential[3] != "bedrock" or not headers.get("x-amz-date"):
        raise RULES["bad_signature"].error()


def resolve_model(model_id: str) -> BedrockRow:
    row = bedrock.catalog_model(model_id)
    if row is None:
        raise RULES["unknown_model"].error()
    return row


def parse_invoke(
    raw: bytes, row: BedrockRow, *, stream: bool, refuse_zero: bool
) -> MessagesRequest:
    """An InvokeModel body: the Messages API's minus `model` and `stream` (the path carries
    them), plus `anthropic_version`; then the model's own rules, relayed as Bedrock does."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise RULES["extraneous_key"].error(key="<not JSON>") from None
    if not isinstance(body, dict):
        raise RULES["no_version"].error()
    for key in ("model", "stream"):
        if key in body:
            raise RULES["extraneous_key"].error(key=key)
    version = body.pop("anthropic_version", None)
    if version is None:
        raise RULES["no_version"].error()
    if version != BEDROCK_VERSION:
        raise RULES["wrong_version"].error(value=version)
    if refuse_zero and body.get("max_tokens") == 0:
        raise RULES["zero_max_tokens"].error()
    try:
        return parse_messages_request({**body, "model": row.model, "stream": stream})
    except RequestError as refused:
        raise RULES["model_refused"].error(message=refused.message) from None
