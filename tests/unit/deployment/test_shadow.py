"""The shadow runner: the caller never waits, queued records are batched, overflow is dropped."""

from __future__ import annotations

import threading
import time
from typing import Any

from tabserve.deployment.shadow import ShadowRunner


def test_submit_returns_while_the_shadow_is_stuck_and_overflow_is_dropped() -> None:
    release = threading.Event()
    calls: list[tuple[str, int]] = []

    def score(variant: str, records: list[dict[str, Any]], ids: list[str]) -> None:
        calls.append((variant, len(records)))
        release.wait(10)

    runner = ShadowRunner(score, max_pending=5)
    assert runner.submit("b", [{"x": 0}], ["r0"])  # taken by the (now stuck) shadow thread
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    accepted = [runner.submit("b", [{"x": i}], [f"r{i}"]) for i in range(1, 9)]
    assert accepted == [True] * 5 + [False] * 3 and runner.dropped == 3
    release.set()
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [("b", 1), ("b", 5)]  # what piled up was scored in one call
    runner.close()
