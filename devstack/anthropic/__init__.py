"""A local emulator of the Anthropic Messages API with faithful prompt-cache semantics.

It is a real HTTP server (``ThreadingHTTPServer`` on loopback) that the official ``anthropic`` SDK
can talk to through ``base_url``, so the code under test runs unchanged: the same requests, the same
SSE parsing, the same exceptions. Everything is deterministic, which lets tests assert exact token
counts and lets benchmarks compute the cost of cache warming.

Models and their rules
----------------------
The emulator serves exactly the models of ``chalicelib.domain.catalog`` (any other id is a 404
``not_found_error``) and refuses what each refuses, with the API's status, error type and message:
a final assistant message where prefill is gone, trailing whitespace in a prefill, empty or
whitespace-only text, ``max_tokens`` above the model's limit, ``max_tokens: 0`` with streaming,
manual thinking, a structured output format or forced tool use, thinking modes a model lacks, and
forced tool use where it is gone. ``errors.py`` lists every rule with its source; ``rules.py``
applies them; ``docs/models.md`` is generated from both.

Token approximation
-------------------
There is no tokenizer here. A text counts ``max(1, ceil(len(text) / 4))`` tokens (characters, not
bytes). A text block (and a string ``system`` or string message ``content``) counts its text; a tool
definition counts the text of its canonical JSON (keys sorted, compact separators, ``cache_control``
removed); any other block (``tool_use``, ``tool_result``, ``thinking``...) counts its canonical JSON
the same way. Images and documents are refused with a 400. The generated reply is ``reply_tokens``
words from a fixed list, chosen from a hash of the last user message; one word is one output token
and one streamed ``text_delta``. ``reply_text`` (admin API) replaces them with a fixed text, one
whitespace-led piece per token, so tests can see how a front end renders a given reply.

Cache model
-----------
The prompt is a sequence of blocks in this order: each tool, the system prompt (a string is one
block, a list is one block per text block), then each message's content blocks (a string content is
one block). A block carrying ``cache_control: {"type": "ephemeral"}`` (TTL ``5m``, the default) or
``{"type": "ephemeral", "ttl": "1h"}`` is a breakpoint; at most 4 are allowed and ``1h`` ones must
come before ``5m`` ones. A top-level ``cache_control`` on the request (automatic caching) puts a
breakpoint on the last block, unless it already has one; it counts toward the 4.

* The key of the prefix ending at a block is a hash of the model and the canonical JSON of every
  block up to it (``cache_control`` removed, so moving a breakpoint does not change the content
  key). Keys of prefixes that reach into ``messages`` also hash ``tool_choice`` and ``thinking``
  (omitted, they count as ``auto`` and ``disabled``). Hence changing a tool invalidates everything,
  while changing ``tool_choice``/``thinking`` invalidates only the messages part.
* Read: for each breakpoint, the emulator looks for a live entry at the breakpoint's prefix, then at
  each earlier block boundary, over at most 20 lookback positions counting the breakpoint's own; a
  run of consecutive ``tool_use`` blocks is one position, and so is a run of ``tool_result`` blocks.
  The longest live hit over all breakpoints is read, and the read refreshes it.
* Write: every breakpoint whose prefix is at least the model's minimum cacheable length (its catalog
  row, or the ``min_cacheable`` override) is written if it has no live entry, or refreshed if it has
  one. Shorter prefixes are silently not cached.
* Usage: ``cache_read_input_tokens`` is the length of the hit prefix; ``cache_creation_input_tokens``
  runs from the end of the hit to the last written breakpoint; ``input_tokens`` is what follows it
  (everything when nothing is cacheable). ``cache_creation`` splits the created tokens by the TTL
  of the written breakpoint that covers them (the first written breakpoint at or after them).
* TTL: an entry lives ``ttl`` from the *start* of the last request that read or wrote it. A refresh
  never shortens an entry: its TTL becomes the longer of the stored and requested ones.
* Entries are written when the response begins (as the API does): a request that fails (error
  faults), a ``drop``ped stream, or a client that gives up during a ``slow`` delay writes nothing.
  The plan (what is read, what counts as created) is fixed at the start of the request.

Time comes from ``EmulatorConfig.clock`` (wall time by default) plus an offset that
``AnthropicEmulator.advance`` (or ``POST /_emulator/advance``) moves forward, so TTL expiry is tested
without waiting. Stream pacing uses real time.

Admin API (no API key needed): ``POST /_emulator/advance {"seconds": n}``,
``POST /_emulator/config`` (``tokens_per_second``, ``reply_tokens``, ``reply_text``,
``min_cacheable``, ``fault``), ``GET /_emulator/stats``, ``GET /_emulator/cache``,
``GET /_emulator/health``, ``POST /_emulator/reset`` (cache and fault; ``{"stats": true}`` also
clears the stats).

Run in the foreground with ``python -m devstack.anthropic --port 25204``.

Modules: ``errors`` (error shape, rule registry), ``prompt`` (tokens, body -> blocks), ``rules``
(per-model validation), ``cache``, ``config`` (knobs, faults, stats), ``reply``, ``streaming``,
``server`` (HTTP), ``emulator`` (the object tests drive), ``cli``.
"""

from devstack.anthropic.cache import LOOKBACK_POSITIONS, CachePlan, PromptCache
from devstack.anthropic.cli import main
from devstack.anthropic.config import FAULT_KINDS, EmulatorConfig, EmulatorStats, Fault
from devstack.anthropic.emulator import AnthropicEmulator
from devstack.anthropic.errors import RULES, RequestError, Rule
from devstack.anthropic.prompt import (
    MessagesRequest,
    PromptBlock,
    canonical_json,
    estimate_tokens,
    tool_tokens,
)
from devstack.anthropic.reply import generate_reply
from devstack.anthropic.rules import parse_messages_request

__all__ = [
    "FAULT_KINDS",
    "LOOKBACK_POSITIONS",
    "RULES",
    "AnthropicEmulator",
    "CachePlan",
    "EmulatorConfig",
    "EmulatorStats",
    "Fault",
    "MessagesRequest",
    "PromptBlock",
    "PromptCache",
    "RequestError",
    "Rule",
    "canonical_json",
    "estimate_tokens",
    "generate_reply",
    "main",
    "parse_messages_request",
    "tool_tokens",
]
