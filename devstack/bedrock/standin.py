"""The object tests and the local stack drive: the Anthropic emulator's cache, clock, faults and
admin API behind Bedrock's wire (see the package docstring)."""

from __future__ import annotations

import collections
import threading
from typing import Any

from devstack.anthropic.cache import CachePlan
from devstack.anthropic.config import EmulatorConfig
from devstack.anthropic.emulator import AnthropicEmulator
from devstack.anthropic.prompt import MessagesRequest
from devstack.anthropic.reply import message_body
from devstack.bedrock.rules import BedrockError
from devstack.bedrock.server import BedrockServer


class BedrockStandIn(AnthropicEmulator):
    """Bedrock's InvokeModel endpoints on `http://host:port` (`ANTHROPIC_BEDROCK_BASE_URL`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
        *,
        report_ttl_split: bool = False,
        refuse_zero_max_tokens: bool = False,
    ) -> None:
        super().__init__(host, port, config)
        # Whether InvokeModel's usage carries `cache_creation` (the 5 min / 1 h split) is
        # unverified (docs/models.md): by default the stand-in leaves it out, so the product's
        # handling of its absence is what runs.
        self.report_ttl_split = report_ttl_split
        # Whether InvokeModel accepts `max_tokens: 0` is undocumented; on, the warm's fallback
        # to 1 is what runs.
        self.refuse_zero_max_tokens = refuse_zero_max_tokens
        self._failures: collections.deque[BedrockError] = collections.deque()
        self._failures_lock = threading.Lock()

    def start(self) -> BedrockStandIn:
        if self._server is None:
            self._server = BedrockServer((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"bedrock-standin-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def __enter__(self) -> BedrockStandIn:
        return self.start()

    def fail_next(self, error: BedrockError, count: int = 1) -> None:
        """Answer the next `count` valid requests with `error` (any Bedrock shape)."""
        with self._failures_lock:
            self._failures.extend([error] * count)

    def take_failure(self) -> BedrockError | None:
        with self._failures_lock:
            return self._failures.popleft() if self._failures else None

    # -- the response, in Anthropic's Messages shape (InvokeModel returns the model's body) --

    def usage(self, plan: CachePlan, output_tokens: int) -> dict[str, Any]:
        usage = plan.usage(output_tokens)
        usage.pop("service_tier", None)
        if not self.report_ttl_split:
            usage.pop("cache_creation", None)
        return usage

    def message(
        self,
        request: MessagesRequest,
        record: dict[str, Any],
        plan: CachePlan,
        words: list[str],
        stop_reason: str,
    ) -> dict[str, Any]:
        usage = self.usage(plan, len(words))
        return message_body(record["message_id"], request.model, words, stop_reason, usage)

    def opening_events(
        self, request: MessagesRequest, record: dict[str, Any], plan: CachePlan
    ) -> list[dict[str, Any]]:
        start = self.message(request, record, plan, [], "end_turn")
        start.update(stop_reason=None, usage=self.usage(plan, 1))
        block = {"type": "text", "text": ""}
        return [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": block},
        ]

    def closing_events(self, plan: CachePlan, stop_reason: str, sent: int) -> list[dict[str, Any]]:
        usage = self.usage(plan, sent)
        usage.pop("cache_creation", None)
        # Bedrock appends its own token counts to the last event (AWS's InvokeModelWithResponse-
        # Stream examples; the SDK ignores the field). The exact field set is unverified here.
        metrics = {"inputTokenCount": plan.input_tokens, "outputTokenCount": sent}
        return [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            },
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics},
        ]
