"""The prompts sent to the model: the warm replays exactly the prefix the next turn reads."""

from __future__ import annotations

from chalicelib.domain.conversation import Conversation, Turn
from chalicelib.domain.prompts import WARM_PLACEHOLDER, turn_prompt, warm_prompt
from chalicelib.domain.warming import Retention, WarmingState


def history() -> list[Turn]:
    return [
        Turn("c1", 0, "first question", 1, status="sealed", assistant_text="first answer"),
        Turn("c1", 1, "aborted question", 2, status="aborted", assistant_text="parti"),
        Turn("c1", 2, "second question", 3, status="sealed", assistant_text="second answer"),
        Turn("c1", 3, "blank", 4, status="failed", assistant_text=" ", error_code="empty_reply"),
    ]


def conversation(retention: Retention = "5m") -> Conversation:
    warming = WarmingState(retention=retention)
    return Conversation("c1", "alice", 0, "t", "claude-sonnet-4-6", "You help.", 1000, warming)


def test_the_warm_is_the_next_turns_prefix_then_an_uncached_placeholder() -> None:
    warm = warm_prompt(conversation(), history())
    turn = turn_prompt(conversation(), history(), "next question")
    assert warm is not None
    # Same model, system and history, so the warm's cache entry is the one the turn reads.
    assert (warm.model, warm.system) == (turn.model, turn.system)
    assert warm.messages[:-1] == turn.messages[:-1]
    assert warm.max_tokens == 0
    # It ends on a user message (no prefill) that carries no breakpoint of its own.
    last = warm.messages[-1]
    assert last == {"role": "user", "content": [{"type": "text", "text": WARM_PLACEHOLDER}]}
    # The breakpoint sits on the last sealed reply.
    reply = warm.messages[-2]
    assert reply["role"] == "assistant"
    assert reply["content"][0] == {
        "type": "text",
        "text": "second answer",
        "cache_control": {"type": "ephemeral"},
    }
    # Only sealed turns are replayed; 4 breakpoints at most (system, last reply, new message).
    texts = [block["text"] for m in turn.messages for block in m["content"]]
    assert texts == ["first question", "first answer", "second question", "second answer",
                     "next question"]  # fmt: skip


def test_the_one_hour_cache_marks_every_breakpoint_with_its_ttl() -> None:
    warm = warm_prompt(conversation("1h"), history())
    assert warm is not None
    marks = [b.get("cache_control") for b in warm.system] + [
        b.get("cache_control") for m in warm.messages for b in m["content"]
    ]
    assert [m for m in marks if m] == [{"type": "ephemeral", "ttl": "1h"}] * 2


def test_nothing_to_warm_before_a_sealed_turn() -> None:
    assert warm_prompt(conversation(), []) is None
