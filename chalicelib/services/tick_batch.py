"""A batch of ticks from the tick queue, as the event source mapping hands it to the warm function.

Why each record gets its own thread: the records of one batch are due at about the same time, and
each warm waits on the network (DynamoDB, Anthropic, the sockets) for about a second. In turn, the
tenth would start nine seconds late; side by side, all start on time.

Why failures are reported one by one: with `ReportBatchItemFailures` Lambda deletes the messages
that succeeded and returns only the listed ones to the queue ("Handling errors for an SQS event
source in Lambda", Lambda Developer Guide, read 2026-12-01). A returned message would only come
back after the queue's visibility timeout (30 minutes here, six times the function timeout as
Lambda recommends): far too late for a 5-minute cache. So a failed tick is first made visible again
after a short backoff (`ChangeMessageVisibility`), and its receive count moves it to the DLQ after
a few attempts (the queue's redrive policy). Duplicates are harmless: a tick is a no-op unless its
`seq` is the conversation's current one.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chalicelib import log_context
from chalicelib.services.ports import Ports
from chalicelib.services.ticks import TickReport, Ticks
from chalicelib.wire.ticks import BadTick, TickRecord, tick_of_body

log = logging.getLogger("cache_warming")

# First retry of a failed tick after this many seconds, doubled per receive, capped.
RETRY_BASE_S = 5
RETRY_MAX_S = 60
# What is not a tick can never succeed: back at once, so the redrive policy moves it to the DLQ.
BAD_TICK_RETRY_S = 1


def retry_delay_s(receive_count: int) -> int:
    return min(RETRY_MAX_S, RETRY_BASE_S << max(0, receive_count - 1))


@dataclass
class BatchOutcome:
    reports: list[TickReport] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # message ids, for batchItemFailures


class TickBatch:
    def __init__(self, ticks: Ticks, ports: Ports) -> None:
        self.ticks = ticks
        self.ports = ports

    def handle(self, records: list[TickRecord], deadline_ms: int | None = None) -> BatchOutcome:
        if len(records) <= 1:
            results = [self._one(record, deadline_ms) for record in records]
        else:
            with ThreadPoolExecutor(len(records), thread_name_prefix="tick") as pool:
                results = list(pool.map(lambda record: self._one(record, deadline_ms), records))
        outcome = BatchOutcome()
        for record, report in zip(records, results, strict=True):
            if report is None:
                outcome.failed.append(record.message_id)
            else:
                outcome.reports.append(report)
        return outcome

    def _one(self, record: TickRecord, deadline_ms: int | None) -> TickReport | None:
        try:
            tick = tick_of_body(record.body)
        except BadTick as error:
            log.error("message %s is not a tick (%s): left for the DLQ", record.message_id, error)
            self._retry(record, BAD_TICK_RETRY_S)
            return None
        with log_context.bound(conversationId=tick.conversation_id, seq=tick.seq):
            try:
                return self.ticks.handle(tick.conversation_id, tick.seq, tick.target, deadline_ms)
            except Exception:  # one tick's failure never fails the others of its batch
                log.exception(
                    "tick %s/%s failed (receive %d)",
                    tick.conversation_id,
                    tick.seq,
                    record.receive_count,
                )
                self._retry(record, retry_delay_s(record.receive_count))
                return None

    def _retry(self, record: TickRecord, delay_s: int) -> None:
        queue = self.ports.tick_queue
        if queue is None or not record.receipt:
            return
        try:
            queue.retry_later(record.receipt, delay_s)
        except Exception:  # the message still comes back, after the visibility timeout
            log.exception("could not shorten the retry of message %s", record.message_id)
