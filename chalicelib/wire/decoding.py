"""The one hardened JSON decoder for WebSocket frames and HTTP bodies.

msgspec refuses what `json.loads` lets through into values we later fail to encode or store:
NaN and Infinity, out-of-range floats, lone surrogate escapes, invalid UTF-8. Nesting deeper than
its recursion limit raises RecursionError, refused the same way. The size is checked first, in
encoded bytes, so nothing large is parsed.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from chalicelib.domain.errors import Refused


def decode_object(
    raw: str | bytes,
    *,
    limit_bytes: int,
    what: str,
    too_large: Literal["frame_too_large", "body_too_large"],
) -> dict[str, Any]:
    """A JSON object of at most `limit_bytes`; Refused(`too_large` | 'bad_json') otherwise."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > limit_bytes:
        raise Refused(too_large, f"a {what} is limited to {limit_bytes} bytes")
    try:
        value = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as error:
        raise Refused("bad_json", f"the {what} is not valid UTF-8 JSON") from error
    if not isinstance(value, dict):
        raise Refused("bad_json", f"a {what} must be a JSON object")
    return value
