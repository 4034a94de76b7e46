"""The reply: deterministic words (or a fixed text), one output token and one streamed delta each.

Replies are lists of *pieces*, each carrying the whitespace before it, so that joining them gives
the text and every piece is one ``text_delta``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

WORDS: tuple[str, ...] = (
    "the", "cache", "warm", "prompt", "token", "stream", "model", "reply", "quick", "brown",
    "fox", "lazy", "dog", "river", "stone", "cloud", "light", "shadow", "garden", "window",
    "paper", "signal", "orbit", "harbor", "copper", "silver", "maple", "cedar", "lantern",
    "meadow", "thunder", "pebble", "valley", "summit", "breeze", "candle", "engine", "canvas",
    "anchor", "falcon", "glacier", "horizon", "island", "jungle", "kettle", "ladder", "marble",
    "needle", "oyster", "puzzle", "quartz", "ribbon", "saddle", "tunnel", "umbrella", "velvet",
    "walnut", "yonder", "zephyr", "amber", "bridge", "circuit", "delta", "ember",
)  # fmt: skip


def reply_pieces(
    seed_text: str, max_tokens: int, reply_tokens: int, reply_text: str | None
) -> tuple[list[str], int]:
    """The pieces of the reply within ``max_tokens``, and how many the whole reply has.

    ``reply_text`` (the admin API's fixed reply) is cut into each run of non-space characters
    with the whitespace before it, so newlines survive and tests see how a front end renders a
    given reply (Markdown, hostile HTML); otherwise ``reply_tokens`` generated words.
    """
    if reply_text is not None:
        pieces = re.findall(r"\s*\S+", reply_text)
        return pieces[:max_tokens], len(pieces)
    words = generate_reply(seed_text, min(max_tokens, reply_tokens))
    return [word if i == 0 else " " + word for i, word in enumerate(words)], reply_tokens


def generate_reply(seed_text: str, words: int) -> list[str]:
    """``words`` deterministic words chosen from ``WORDS`` by hashing ``seed_text``."""
    seed = hashlib.sha256(seed_text.encode()).digest()
    out: list[str] = []
    for i in range(words):
        digest = hashlib.blake2b(seed + i.to_bytes(4, "big"), digest_size=4).digest()
        out.append(WORDS[int.from_bytes(digest, "big") % len(WORDS)])
    return out


def message_body(
    message_id: str, model: str, words: list[str], stop_reason: str, usage: dict[str, Any]
) -> dict[str, Any]:
    """The non-streamed Message object, as the Messages API (and Bedrock's InvokeModel) answers."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(words)}] if words else [],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
