"""A strict local stand-in for Claude on Amazon Bedrock (InvokeModel on bedrock-runtime).

moto's bedrock-runtime is a stub (`invoke_model` returns `{}`), so the local stack and the tests
talk to this real HTTP server instead, through the anthropic SDK's `AnthropicBedrock` client
(`ANTHROPIC_BEDROCK_BASE_URL`), with no patching of the SDK.

It speaks Bedrock's wire: `POST /model/{modelId}/invoke` (JSON) and
`/model/{modelId}/invoke-with-response-stream` (AWS event-stream frames: prelude, headers,
CRC32s, base64 `bytes` chunks, exception frames; `eventstream.py`), errors as `{"message"}` with
`x-amzn-ErrorType`. It refuses what Bedrock refuses (`rules.RULES`, each with its source): an
unsigned request or one not signed for service `bedrock`, an unknown model or profile id, `model`
or `stream` in the body, a missing or wrong `anthropic_version` (only `bedrock-2023-05-31`), and
every refusal of the Anthropic emulator's rules (prefill, whitespace text, `max_tokens` over the
limit or 0 with streaming ...), relayed as Bedrock relays the model's own 400s.

The cache is the Anthropic emulator's (`devstack.anthropic`: the same keys, lookback, TTLs and
usage), with Bedrock's minimum cacheable prefix per model (`chalicelib.domain.catalog.bedrock`).
So are the clock, the faults (as Bedrock errors: `server.FAULT_ERRORS`) and the admin API at
`/_emulator/...`. `BedrockStandIn.fail_next` answers with any other Bedrock error shape.
Not modelled: implicit caching, cross-region routing's extra cache writes, signature checking
(only its presence and scope), invocation logging.
"""

from devstack.bedrock.rules import BEDROCK_VERSION, RULES, BedrockError
from devstack.bedrock.standin import BedrockStandIn

__all__ = ["BEDROCK_VERSION", "RULES", "BedrockError", "BedrockStandIn"]
