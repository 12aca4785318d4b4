"""The stream worker follows the deployment: a promotion reaches a worker that is running.

Before, a worker read which model the deployment serves once, at start: after a switch it went
on scoring the stream with the old model, which the service no longer answered with (issue 15).
Now, between batches and at most every `streaming.follow_interval_s` (30 s; 0 turns it off), it
reads the deployment state again (deployment/served.py); when the primary variant's model
changed, it loads the new one (integrity checked, as at start) and scores the next batch with
it. A batch in flight finishes with the model it started with; a result names its model. A state
that cannot be read keeps the current model (one WARNING per failed read). `--model` pins a
model: nothing is followed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from tabserve.api_models import example_record, record_model
from tabserve.deployment.served import primary_model
from tabserve.errors import TabserveError
from tabserve.model_store import get_model
from tabserve.predictions.logger import PredictionLogger
from tabserve.serving.runtime import Scorer
from tabserve.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scoring:
    """What scores a batch: the model's tag, its scorer and its record type (the schema check)."""

    tag: str
    scorer: Scorer
    record_type: type[BaseModel]


def load_scoring(settings: Settings, tag: str, prediction_logger: PredictionLogger | None) -> Scoring:
    stored = get_model(tag)
    record_type = record_model(
        stored.schema,
        example_record(stored.schema, stored.load_reference()),
        markers=stored.markers,
        unused=stored.unused_columns,
    )
    return Scoring(stored.tag, Scorer(stored, settings.serving, prediction_logger), record_type)


class ModelFollower:
    """Called between batches: the new `Scoring` when the served model changed, else None."""

    def __init__(
        self,
        current: str,
        interval_s: float,
        served: Callable[[], str],
        load: Callable[[str], Scoring],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.current, self.interval_s = current, interval_s
        self.served, self.load, self.clock = served, load, clock
        self.next_check = clock() + interval_s

    def __call__(self) -> Scoring | None:
        if self.clock() < self.next_check:
            return None
        self.next_check = self.clock() + self.interval_s
        try:
            tag = get_model(self.served()).tag  # "name:latest" resolves to the version it is now
            if tag == self.current:
                return None
            scoring = self.load(tag)
        except TabserveError as error:  # unreadable state, missing or altered model: keep scoring
            logger.warning(
                "could not follow the served model (%s); still scoring with %s", error, self.current
            )
            return None
        logger.info("the deployment now serves %s: scoring with it instead of %s", tag, self.current)
        self.current = tag
        return scoring


def follower(settings: Settings, current: str, prediction_logger: PredictionLogger | None) -> ModelFollower:
    return ModelFollower(
        current,
        settings.streaming.follow_interval_s,
        lambda: primary_model(settings),
        lambda tag: load_scoring(settings, tag, prediction_logger),
    )
