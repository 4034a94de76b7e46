"""The generated reply: deterministic words, one output token and one streamed delta each."""

from __future__ import annotations

import hashlib

WORDS: tuple[str, ...] = (
    "the", "cache", "warm", "prompt", "token", "stream", "model", "reply", "quick", "brown",
    "fox", "lazy", "dog", "river", "stone", "cloud", "light", "shadow", "garden", "window",
    "paper", "signal", "orbit", "harbor", "copper", "silver", "maple", "cedar", "lantern",
    "meadow", "thunder", "pebble", "valley", "summit", "breeze", "candle", "engine", "canvas",
    "anchor", "falcon", "glacier", "horizon", "island", "jungle", "kettle", "ladder", "marble",
    "needle", "oyster", "puzzle", "quartz", "ribbon", "saddle", "tunnel", "umbrella", "velvet",
    "walnut", "yonder", "zephyr", "amber", "bridge", "circuit", "delta", "ember",
)  # fmt: skip


def generate_reply(seed_text: str, words: int) -> list[str]:
    """``words`` deterministic words chosen from ``WORDS`` by hashing ``seed_text``."""
    seed = hashlib.sha256(seed_text.encode()).digest()
    out: list[str] = []
    for i in range(words):
        digest = hashlib.blake2b(seed + i.to_bytes(4, "big"), digest_size=4).digest()
        out.append(WORDS[int.from_bytes(digest, "big") % len(WORDS)])
    return out
