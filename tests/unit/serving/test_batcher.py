"""The adaptive batcher on a real event loop: batch sizes, the latency budget, cancellation, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from http import HTTPStatus

from bentoml.exceptions import ServiceUnavailable

from tabserve.serving.batcher import OVER_BUDGET, AdaptiveBatcher


class Model:
    """A scoring function that records each batch and takes `seconds` per batch (off the loop)."""

    def __init__(self, seconds: float = 0.0, fail_on: str | None = None) -> None:
        self.seconds, self.fail_on = seconds, fail_on
        self.batches: list[list[str]] = []

    async def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.to_thread(time.sleep, self.seconds)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot score {self.fail_on}")
        return [item.upper() for item in items]


async def submit_all(batcher: AdaptiveBatcher[str, str], items: list[str]) -> list[str | BaseException]:
    return await asyncio.gather(*(batcher.submit(item) for item in items), return_exceptions=True)


def test_batches_form_up_to_the_maximum_size_and_answers_keep_their_order() -> None:
    model, sizes = Model(), list[int]()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_s=5, on_batch=sizes.append)
    items = [f"r{i}" for i in range(10)]
    assert asyncio.run(submit_all(batcher, items)) == [item.upper() for item in items]
    assert [len(batch) for batch in model.batches] == sizes == [4, 4, 2]
    assert [item for batch in model.batches for item in batch] == items


def test_a_lone_request_is_scored_at_once() -> None:
    batcher = AdaptiveBatcher(Model(), max_batch_size=128, max_latency_s=2)

    async def timed() -> float:
        await batcher.submit("warm-up")
        started = time.perf_counter()
        await batcher.submit("alone")
        return time.perf_counter() - started

    assert asyncio.run(timed()) < 0.05  # no waiting to fill a batch (the budget is 2 s)


def test_requests_arriving_while_a_batch_is_scored_form_the_next_batch() -> None:
    model = Model(seconds=0.05)
    batcher = AdaptiveBatcher(model, max_batch_size=128, max_latency_s=5)

    async def staggered() -> None:
        first = asyncio.create_task(batcher.submit("first"))
        await asyncio.sleep(0.01)  # "first" is being scored now
        await asyncio.gather(first, *(batcher.submit(f"later{i}") for i in range(5)))

    asyncio.run(staggered())
    assert [len(batch) for batch in model.batches] == [1, 5]


def test_the_latency_budget_bounds_waiting_and_a_queue_behind_it_refuses_at_once() -> None:
    model = Model(seconds=0.1)
    batcher = AdaptiveBatcher(model, max_batch_size=1, max_latency_s=0.25)

    async def overload() -> tuple[list[tuple[str | BaseException, float]], BaseException | None, float]:
        started = time.perf_counter()

        async def timed(item: str) -> tuple[str | BaseException, float]:
            try:
                answer: str | BaseException = await batcher.submit(item)
            except ServiceUnavailable as error:
                answer = error
            return answer, time.perf_counter() - started

        queued = [asyncio.create_task(timed(f"r{i}")) for i in range(8)]
        await asyncio.sleep(0.27)  # r0..r2 scored or being scored; r3 has waited past its budget
        late_started = time.perf_counter()
        try:
            await batcher.submit("newcomer")
            refused: BaseException | None = None
        except ServiceUnavailable as error:
            refused = error
        newcomer_s = time.perf_counter() - late_started
        return await asyncio.gather(*queued), refused, newcomer_s

    answers, newcomer, newcomer_s = asyncio.run(overload())
    scored = [seconds for answer, seconds in answers if isinstance(answer, str)]
    refused = [(answer, seconds) for answer, seconds in answers if not isinstance(answer, str)]
    assert 2 <= len(scored) <= 4 and len(scored) + len(refused) == 8
    assert max(scored) < 0.25 + 0.1 + 0.1  # the budget, one batch, and slack for a loaded machine
    for error, seconds in refused:  # answered when their budget was spent, not scored late
        assert isinstance(error, ServiceUnavailable) and str(error) == OVER_BUDGET
        assert error.error_code == HTTPStatus.SERVICE_UNAVAILABLE and seconds < 0.25 + 0.1 + 0.1
    assert isinstance(newcomer, ServiceUnavailable) and newcomer_s < 0.02  # at once
    assert ["newcomer"] not in model.batches


def test_requests_queued_behind_a_stall_past_their_budget_get_a_503_not_a_late_answer() -> None:
    model = Model(seconds=0.3)
    batcher = AdaptiveBatcher(model, max_batch_size=1, max_latency_s=0.1)

    async def stalled() -> list[str | BaseException]:
        first = asyncio.create_task(batcher.submit("slow"))
        await asyncio.sleep(0.01)  # "slow" is being scored; "late" queues behind it past its budget
        return list(await asyncio.gather(first, batcher.submit("late"), return_exceptions=True))

    first, late = asyncio.run(stalled())
    assert first == "SLOW" and isinstance(late, ServiceUnavailable)
    assert model.batches == [["slow"]]  # the late request was never scored


def test_a_cancelled_caller_does_not_poison_the_others() -> None:
    model = Model(seconds=0.05)
    batcher = AdaptiveBatcher(model, max_batch_size=8, max_latency_s=5)

    async def with_cancellations() -> tuple[list[str | BaseException], bool, bool]:
        busy = asyncio.create_task(batcher.submit("busy"))
        await asyncio.sleep(0.01)  # "busy" is being scored; the next ones queue
        waiting = [asyncio.create_task(batcher.submit(item)) for item in ("a", "gone", "b")]
        await asyncio.sleep(0)
        waiting[1].cancel()  # the client went away while queued
        await asyncio.sleep(0.01)
        busy.cancel()  # ... and one while its batch is scored
        answers = await asyncio.gather(*waiting, return_exceptions=True)
        after = await batcher.submit("after")
        return [*answers, after], waiting[1].cancelled(), busy.cancelled()

    answers, gone_cancelled, busy_cancelled = asyncio.run(with_cancellations())
    assert answers[0] == "A" and answers[2] == "B" and answers[3] == "AFTER"
    assert gone_cancelled and busy_cancelled
    assert model.batches == [["busy"], ["a", "b"], ["after"]]  # the cancelled one was skipped


def test_a_scoring_error_reaches_the_callers_of_that_batch_only() -> None:
    model = Model(fail_on="bad")
    batcher = AdaptiveBatcher(model, max_batch_size=2, max_latency_s=5)
    answers = asyncio.run(submit_all(batcher, ["a", "bad", "c", "d"]))
    assert [type(answer) for answer in answers[:2]] == [ValueError, ValueError]
    assert "cannot score bad" in str(answers[0])
    assert answers[2:] == ["C", "D"]


def test_a_scorer_that_loses_results_fails_its_batch_instead_of_hanging() -> None:
    async def loses_one(items: Sequence[str]) -> list[str]:
        return list(items)[1:]

    batcher = AdaptiveBatcher(loses_one, max_batch_size=4, max_latency_s=5)
    answers = asyncio.run(submit_all(batcher, ["a", "b"]))
    assert all(isinstance(answer, RuntimeError) for answer in answers)


def test_close_answers_the_queue_with_a_503_and_refuses_new_work() -> None:
    model = Model(seconds=0.05)
    batcher = AdaptiveBatcher(model, max_batch_size=1, max_latency_s=5)

    async def closing() -> list[str | BaseException]:
        tasks = [asyncio.create_task(batcher.submit(item)) for item in ("a", "b")]
        await asyncio.sleep(0.01)  # "a" is being scored, "b" waits
        batcher.close()
        return [*await asyncio.gather(*tasks, return_exceptions=True), *await submit_all(batcher, ["c"])]

    a, b, c = asyncio.run(closing())
    assert a == "A" and isinstance(b, ServiceUnavailable) and isinstance(c, ServiceUnavailable)
