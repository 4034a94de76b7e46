"""AWS event-stream messages, the framing of InvokeModelWithResponseStream's body.

A message is a 12-byte prelude (total length and headers length, both uint32 big-endian, then the
CRC32 of those 8 bytes), the headers, the payload and the CRC32 of everything before it. A header
is its name's length (uint8), the name, a type byte (7: string), the value's length (uint16) and
the value. Read from botocore 1.44.8 `eventstream.py` (`EventStreamBuffer`, `_validate_prelude`,
`_parse_headers`: the decoder the anthropic SDK's Bedrock client uses) and the AWS event-stream
encoding as summarised in ../shared/NOTES.md "Amazon Bedrock" (read 2026-12-07).

A Messages API event travels as `{"bytes": base64(event JSON)}` in a `chunk` event; an error
mid-stream is an exception message whose `:exception-type` names the shape of bedrock-runtime's
`ResponseStream` union (botocore's service-2.json: `throttlingException`, `validationException`,
`modelStreamErrorException`, `internalServerException`, `serviceUnavailableException`,
`modelTimeoutException`), with `{"message": ...}` as its payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

_STRING = 7
PRELUDE_BYTES = 12
CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _headers(headers: dict[str, str]) -> bytes:
    out = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return out


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with its two checksums."""
    encoded = _headers(headers)
    total = PRELUDE_BYTES + len(encoded) + len(payload) + 4
    lengths = struct.pack("!II", total, len(encoded))
    prelude = lengths + struct.pack("!I", binascii.crc32(lengths))
    body = prelude + encoded + payload
    return body + struct.pack("!I", binascii.crc32(body))


def chunk(event: dict[str, Any]) -> bytes:
    """A Messages API streaming event as Bedrock sends it: base64 bytes in a `chunk` event."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    headers = {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return message(headers, json.dumps({"bytes": data}).encode())


def exception(shape: str, text: str) -> bytes:
    """An error mid-stream: `shape` is the ResponseStream member, e.g. `throttlingException`."""
    headers = {
        ":exception-type": shape,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps({"message": text}).encode())
