"""The conversation every conformance test replays, built with the product's own prompt code.

A sealed history whose prefix is comfortably above the model's minimum cacheable length (real
tokenizers count fewer tokens per character than the emulator's 4-characters rule, hence the
margin), so a warm must read it from cache and the next turn must read what the warm kept alive.
The history's reply is fixed text: the contract is about the requests, not the model's words.
"""

from __future__ import annotations

from chalicelib.domain import catalog
from chalicelib.domain.catalog import bedrock
from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.pricing import Usage
from chalicelib.domain.prompts import Prompt, turn_prompt, warm_prompt

TURN_MAX_TOKENS = 1024
NEW_QUESTION = "Thanks. One more: which part costs the most?"
_SENTENCE = (
    "The assistant answers questions about a small bakery's weekly orders, deliveries and "
    "opening hours, and says so when it does not know. "
)


def _system_chars(model: str) -> int:
    facts, row = catalog.lookup(model), bedrock.lookup(model)
    # The larger of the two providers' minimums (Opus 4.7: 4,096 on Bedrock), so one scenario
    # serves both.
    minimum = max(
        facts.min_cacheable_tokens if facts else 4096, row.min_cacheable_tokens if row else 0
    )
    return minimum * 4 * 2  # about twice the minimum, even at 4 characters per token


def conversation(model: str, nonce: str) -> Conversation:
    # The nonce makes each run's prefix new to the cache, so the first warm must write it.
    text = f"Run {nonce}. " + (_SENTENCE * (_system_chars(model) // len(_SENTENCE) + 1)).strip()
    return Conversation("conformance", "conformance", 0, "t", model, text, TURN_MAX_TOKENS)


def history() -> list[Turn]:
    return [
        Turn(
            "conformance",
            0,
            "How many loaves went out on Monday?",
            0,
            status="sealed",
            assistant_text="Forty-two loaves went out on Monday, all before noon.",
        )
    ]


def warm(model: str, nonce: str) -> Prompt:
    prompt = warm_prompt(conversation(model, nonce), history())
    assert prompt is not None
    return prompt


def next_turn(model: str, nonce: str, text: str = NEW_QUESTION) -> Prompt:
    return turn_prompt(conversation(model, nonce), history(), text)


def planned_usage(model: str) -> list[Usage]:
    """An upper bound of what one model's run is billed for: the first warm writes the prefix,
    a second warm and the next turn read it, the turn writes its question and generates at most
    TURN_MAX_TOKENS (three times: the adapter's stream, the raw event-order stream, and a stream
    stopped at its first text)."""
    prefix = _system_chars(model) // 3  # generous: 3 characters per token
    write = Usage(cache_creation_input_tokens=prefix, cache_creation_5m_input_tokens=prefix)
    read = Usage(cache_read_input_tokens=prefix, input_tokens=20)
    turn = Usage(
        cache_read_input_tokens=prefix,
        cache_creation_input_tokens=40,
        output_tokens=TURN_MAX_TOKENS,
    )
    return [write, read, turn, turn, turn]
