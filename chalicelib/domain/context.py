"""Does the next turn still fit the model's context window? (pure)

The API refuses a request whose prompt plus `max_tokens` exceeds the model's context window
(400 invalid_request_error, "input length and `max_tokens` exceed context limit: …" or "prompt is
too long: N tokens > M maximum"), so a conversation whose history fills the window can no longer
take a turn. The check runs before the model is called, on an estimate that errs on the side of
refusing: the last sealed turn's prompt plus its whole output (thinking included, though thinking
is not sent back) is what the next prompt repeats, and the new text counts one token per two
UTF-8 bytes (English runs about four characters a token; CJK about one a character, 3 bytes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from chalicelib.domain import catalog
from chalicelib.domain.errors import Refused

if TYPE_CHECKING:
    from chalicelib.domain.conversation import Conversation

BYTES_PER_TOKEN_FLOOR = 2


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN_FLOOR)


def context_limit(conversation: Conversation) -> int | None:
    """The largest prompt a turn of this conversation may send; None for an unknown model."""
    facts = catalog.lookup(conversation.model)
    if facts is None:
        return None
    return facts.context_window - conversation.max_tokens


def check_fits(conversation: Conversation, text: str, limit: int | None) -> None:
    """Refuse a turn whose estimated prompt would not fit. Unknown sizes are not refused here:
    the API's own refusal (`context_window_exceeded`) covers them."""
    prefix = conversation.warming.prefix_tokens
    if limit is None or prefix is None:
        return
    needed = prefix + estimate_tokens(text)
    if needed > limit:
        raise Refused(
            "context_full",
            f"this conversation no longer fits the model's context window (about {needed:,} of "
            f"{limit:,} tokens with this message); send a shorter message or start a new "
            "conversation",
        )
