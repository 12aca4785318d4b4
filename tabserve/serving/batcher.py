"""Adaptive batching of concurrent single-record calls into one vectorised scoring call.

Ours, not BentoML's: its dispatcher is a private class (issue 13); MLServer's
`batching/adaptive.py` is the model, with two differences. A batch leaves as soon as the
scorer is free instead of waiting `max_batch_time` to fill up, so a lone request (c=1) never
waits; while a batch is scored, the next one gathers (at c=32 that is most of the queue). And
each request has a latency budget (`serving.batching.max_latency_ms`): one still queued when
its budget is spent is answered 503 instead of being scored late, and while the oldest queued
request is past its budget (the queue is behind) a new one is answered 503 at once. No
estimate of a batch's time decides it (an earlier estimate, one slow batch times the queue's
batches, refused requests that would have made it on a loaded machine): only measured waits.

One event loop per worker: the queue needs no lock. A caller that goes away (its task is
cancelled) leaves a cancelled future behind, which the next batch skips; a scoring error
reaches the callers of that batch only.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bentoml.exceptions import ServiceUnavailable

Item = TypeVar("Item")
Result = TypeVar("Result")

OVER_BUDGET = "the batcher is over its latency budget; retry shortly"
SHUT_DOWN = "the batcher is shutting down; retry on another worker"


@dataclass
class _Waiter(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]
    queued_at: float = field(default_factory=time.monotonic)


class AdaptiveBatcher(Generic[Item, Result]):
    """`await batcher.submit(item)` -> its result, scored with whatever else is waiting.

    `score(items)` returns one result per item, in order. `on_batch(size)` sees each batch's size
    (the Prometheus histogram). Call `close()` to answer everything still queued with a 503.
    """

    def __init__(
        self,
        score: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        max_batch_size: int,
        max_latency_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._score = score
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_s
        self._on_batch = on_batch
        self._queue: collections.deque[_Waiter[Item, Result]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def behind(self) -> bool:
        """The oldest queued request is past its budget: newcomers would be too."""
        return bool(self._queue) and time.monotonic() - self._queue[0].queued_at > self.max_latency_s

    async def submit(self, item: Item) -> Result:
        if self._closed:
            raise ServiceUnavailable(SHUT_DOWN)
        if self.behind():
            raise ServiceUnavailable(OVER_BUDGET)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiter(item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="adaptive-batcher")
        return await future  # a cancelled caller cancels this future: its batch skips it

    def _take(self) -> list[_Waiter[Item, Result]]:
        """The next batch: up to max_batch_size live waiters; those past their budget get a 503."""
        batch: list[_Waiter[Item, Result]] = []
        now = time.monotonic()
        while self._queue and len(batch) < self.max_batch_size:
            waiter = self._queue.popleft()
            if waiter.future.done():  # the caller went away
                continue
            if now - waiter.queued_at > self.max_latency_s:
                waiter.future.set_exception(ServiceUnavailable(OVER_BUDGET))
                continue
            batch.append(waiter)
        return batch

    async def _run(self) -> None:
        while self._queue:
            batch = self._take()
            if not batch:
                continue
            try:
                results = await self._score([waiter.item for waiter in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"scored {len(batch)} items into {len(results)} results")
            except Exception as error:
                for waiter in batch:
                    if not waiter.future.done():
                        waiter.future.set_exception(error)
            else:
                for waiter, result in zip(batch, results, strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(len(batch))

    def close(self) -> None:
        """Answer every queued caller with a 503 and take no more (in the event loop's thread).

        The batch being scored finishes and is answered.
        """
        self._closed = True
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(ServiceUnavailable(SHUT_DOWN))
