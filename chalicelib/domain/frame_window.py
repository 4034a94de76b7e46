"""The frames one container has seen per connection and second.

Each frame counted here was then either counted in the store's window or refused because that
window was already full (or refused as unauthenticated: no later frame of that connection is
admitted anyway). So a connection past the limit here is past it in the store too: its frame is
refused without the store's read and conditional write (which DynamoDB bills even when the
condition fails). Under the limit here, the store decides, since a connection's frames land on
several containers.
"""

from __future__ import annotations

# Seconds of windows kept: frames are counted by arrival and processed slightly out of order.
KEPT_SECONDS = 3
# Past this many windows, the ones older than KEPT_SECONDS go.
PRUNE_AT = 10_000


class SeenFrames:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._latest = 0

    def over_limit(self, connection_id: str, second: int, limit: int) -> bool:
        """Count one more frame; True when this container alone has seen more than `limit`."""
        key = (connection_id, second)
        seen = self._counts.get(key, 0) + 1
        self._counts[key] = seen
        self._latest = max(self._latest, second)
        if len(self._counts) > PRUNE_AT:
            oldest = self._latest - KEPT_SECONDS
            self._counts = {k: n for k, n in self._counts.items() if k[1] > oldest}
        return seen > limit
