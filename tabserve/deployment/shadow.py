"""Shadow scoring off the response path: one thread, a bounded queue, micro-batches.

`submit` only appends to a list under a lock (microseconds), so the response never waits for
the shadow. While the shadow thread is busy, submissions pile up and are scored together in
one call; past `max_pending` records they are dropped and counted, so a slow shadow costs
memory up to a bound and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tabserve.serving.metrics import ServiceMetrics

logger = logging.getLogger(__name__)
ShadowScore = Callable[[str, list[dict[str, Any]], list[str]], None]


class ShadowRunner:
    def __init__(self, score: ShadowScore, max_pending: int, metrics: ServiceMetrics | None = None) -> None:
        self._score, self.max_pending, self.metrics = score, max_pending, metrics
        self._pending: list[tuple[str, dict[str, Any], str]] = []
        self._wakeup = threading.Condition()
        self._closed = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, variant: str, records: Sequence[dict[str, Any]], request_ids: Sequence[str]) -> bool:
        """Queue records for the shadow variant; False (and counted) when the queue is full."""
        with self._wakeup:
            if self._closed or len(self._pending) + len(records) > self.max_pending:
                self.dropped += len(records)
                if self.metrics is not None:
                    self.metrics.shadow_dropped.inc(len(records))
                return False
            self._pending.extend(
                (variant, record, request_id) for record, request_id in zip(records, request_ids, strict=True)
            )
            self._wakeup.notify()
        return True

    def _take(self) -> list[tuple[str, dict[str, Any], str]] | None:
        with self._wakeup:
            while not self._pending and not self._closed:
                self._wakeup.wait()
            if self._closed:
                return None
            batch, self._pending = self._pending, []
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            by_variant: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
            for variant, record, request_id in batch:
                records, ids = by_variant.setdefault(variant, ([], []))
                records.append(record)
                ids.append(request_id)
            for variant, (records, ids) in by_variant.items():
                self._score(variant, records, ids)

    def close(self) -> None:
        """Stop; what is still queued is dropped (shadow results are never owed to anyone)."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
