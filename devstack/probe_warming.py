"""The probe's warming checks: enabling, warms kept to the announced time, and warming that goes
on while no socket is connected."""

from __future__ import annotations

import json
import time
from typing import Any

from devstack.probe_session import EARLY_TOLERANCE_MS, WARM_PROMISE_MS, ProbeSession
from devstack.probe_transport import ProbeError, Received, field_value, now_ms, timer


class WarmingChecks(ProbeSession):
    def _enable(self) -> tuple[int, int | None]:
        self.current = "enable"
        assert self.socket is not None
        interval = self.invoke(self.socket, "cache-warming/set-interval", self.interval_s)
        enabled = self.invoke(self.socket, "cache-warming/toggle", True)
        next_at, last_at = timer(enabled.frame)
        status = field_value(enabled.frame, "status")
        ok = (
            field_value(interval.frame, "interval") == self.interval_s
            and field_value(enabled.frame, "enabled") is True
            and status == "scheduled"
            and next_at is not None
            and next_at > enabled.at_ms - EARLY_TOLERANCE_MS
        )
        self.check(
            "enable",
            ok,
            f"interval {field_value(interval.frame, 'interval')} s, enabled, status {status}, "
            f"first warm in {((next_at or 0) - enabled.at_ms) / 1000:.1f} s",
        )
        if next_at is None:
            raise ProbeError("no nextWarmAt after enabling")
        return next_at, last_at

    def _warms(self, announced: int, last: int | None, count: int = 3) -> tuple[int, int | None]:
        assert self.socket is not None
        since = self.socket.mark()
        percents: list[Any] = []
        for number in range(1, count + 1):
            self.current = f"warm-{number}"
            update, next_at, last_at = self._one_warm(number, announced, last, since)
            since = update.index + 1
            percents.append(field_value(update.frame, "last-cache-pct"))
            if next_at is None:
                raise ProbeError("warming stopped")
            announced, last = next_at, last_at
        self.current = "warms-read-cache"
        later = percents[1:]
        self.check(
            "warms-read-cache",
            bool(later) and all(p == 100 for p in later),
            "last-cache-pct per warm: "
            + ", ".join(json.dumps(p) for p in percents)
            + " (every warm after the first must read the whole prefix)",
        )
        return announced, last

    def _one_warm(
        self, number: int, announced: int, previous: int | None, since: int
    ) -> tuple[Received, int | None, int]:
        """Wait for the update of warm `number` (lastWarmAt moves on) and check its timing;
        returns the update, its nextWarmAt and its lastWarmAt."""
        assert self.socket is not None

        def warmed(frame: dict[str, Any]) -> bool:
            return self.is_update(frame) and timer(frame)[1] not in (None, previous)

        timeout = max(0.0, (announced - now_ms()) / 1000) + 10 + self.warm_budget_ms / 1000
        update = self.socket.wait(warmed, timeout, since, f"update after warm {number}")
        next_at, last_at = timer(update.frame)
        assert last_at is not None
        lateness = last_at - announced
        delivery = update.at_ms - announced
        latency = update.at_ms - last_at
        self.warm_errors_ms.append(lateness)
        status = field_value(update.frame, "status")
        ok = (
            -EARLY_TOLERANCE_MS <= lateness <= WARM_PROMISE_MS
            and delivery <= WARM_PROMISE_MS + self.warm_budget_ms
            and next_at is not None
            and next_at > update.at_ms
            and status == "scheduled"
        )
        self.check(
            f"warm-{number}",
            ok,
            f"warm started {lateness:+d} ms from the announced nextWarmAt; update arrived "
            f"{delivery:+d} ms after it (warm latency {latency} ms); next warm in "
            f"{((next_at or 0) - update.at_ms) / 1000:.1f} s ({status})",
        )
        return update, next_at, last_at

    def _warming_without_socket(self, announced: int, last: int | None) -> tuple[int, int | None]:
        self.current = "warm-without-socket"
        assert self.socket is not None
        self.socket.close()
        disconnected = now_ms()
        wake = announced + WARM_PROMISE_MS + self.warm_budget_ms
        time.sleep(max(0.0, min((wake - now_ms()) / 1000, self.interval_s + 30)))
        _, surface = self.open_socket()
        next_at, last_at = timer(surface.frame)
        lateness = None if last_at is None else last_at - announced
        ok = (
            last_at is not None
            and last_at != last
            and lateness is not None
            and -EARLY_TOLERANCE_MS <= lateness <= WARM_PROMISE_MS
            and next_at is not None
            and next_at > surface.at_ms
        )
        self.check(
            "warm-without-socket",
            ok,
            f"no socket for {(surface.at_ms - disconnected) / 1000:.1f} s; lastWarmAt advanced, "
            f"warm started {lateness if lateness is not None else '?'} ms from the nextWarmAt "
            f"announced before the disconnect; next warm in "
            f"{((next_at or 0) - surface.at_ms) / 1000:.1f} s",
        )
        if lateness is not None:
            self.warm_errors_ms.append(lateness)
        if next_at is None:
            raise ProbeError("warming stopped while no socket was connected")
        return next_at, last_at
