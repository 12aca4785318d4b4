"""One retraining loop: gate, data, challenger, paired evaluation, decision, hand-off, audit.

    gate      one loop at a time, a cooldown, new labels since the last loop, no rollout running
    data      the served model's labelled rows, split by time (training_data.py)
    train     the champion's recipe on the training rows (challenger.py)
    evaluate  champion and challenger on the same held-out rows (paired_tests.py, decision.py)
    hand off  an accepted challenger goes to the running service as a candidate: shadow, canary
              steps, promotion or rollback by the service's own guards (deployment/)
    wait      with --wait, until the rollout ends

Every phase writes the loop's audit record, so a loop that dies leaves its evidence behind.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from tabserve.deployment.store import read_state
from tabserve.errors import TabserveError
from tabserve.model_store import StoredModel
from tabserve.predictor import PREDICTION_COLUMN, Predictor
from tabserve.retraining import audit
from tabserve.retraining.challenger import fit_challenger, save_challenger
from tabserve.retraining.decision import DecisionRule, Verdict, decide, verdict_json, verdict_table
from tabserve.retraining.handoff import Handoff, RolloutOutcome
from tabserve.retraining.paired_tests import compare_classifiers, compare_regressors
from tabserve.retraining.training_data import (
    LABEL_COLUMN,
    TS_COLUMN,
    NotEnoughLabelsError,
    Window,
    as_targets,
    labels_since,
    mix_rows,
    newest_label,
    original_rows,
    read_labelled,
    split_by_time,
    unlearnable_columns,
)
from tabserve.settings import Settings

logger = logging.getLogger(__name__)
EXIT_ACCEPTED, EXIT_REJECTED = 0, 1
SEED = 0


@dataclass(frozen=True)
class Request:
    window: Window
    trigger: str
    actor: str
    wait: bool = False


@dataclass
class Outcome:
    code: int
    record: dict[str, Any] = field(default_factory=dict)


class Phases:
    """Seconds and peak memory (max RSS so far) of each phase, for the record and the benchmark."""

    def __init__(self, report: Callable[[str], None], show: Callable[[str], None]) -> None:
        self.report, self.show = report, show  # progress; results (shown as soon as they are known)
        self.timings: dict[str, dict[str, float]] = {}

    @contextmanager
    def phase(self, name: str, doing: str) -> Iterator[None]:
        self.report(doing)
        started = time.perf_counter()
        yield
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.timings[name] = {
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(peak_mb, 1),
        }


def _gate(engine: Engine, settings: Settings, champion: StoredModel, now: datetime) -> None:
    """Raise LoopRefusedError when no loop may start now."""
    retrain = settings.retrain
    runs = audit.recent_runs(engine, limit=1)
    last = runs[0] if runs else None
    stale = timedelta(minutes=retrain.stale_after_minutes)
    if last is not None and last.in_flight and now - last.started_at >= stale:
        audit.abandon(engine, last, now)
    reason = audit.refusal(last, now, timedelta(minutes=retrain.cooldown_minutes), stale)
    if reason is not None:
        raise audit.LoopRefusedError(reason)
    stored = read_state(engine)
    rollout = (stored[1].get("rollout") or {}) if stored is not None else {}
    if rollout.get("state") == "running":
        raise audit.LoopRefusedError(
            f"a rollout is running (candidate {stored[1]['policy'].get('candidate') if stored else '?'}): "
            "wait until it is promoted or rolled back (`tabserve deploy status`)"
        )
    watermark = next((run.label_watermark for run in runs if run.label_watermark is not None), None)
    name = champion.tag.split(":")[0]
    if watermark is not None and labels_since(engine, name, watermark) == 0:
        raise audit.LoopRefusedError(
            f"no new labels since the last loop ({last.evaluation_id if last else '?'}, newest label "
            f"{watermark:%Y-%m-%d %H:%M:%S} UTC): nothing new to learn from; send /feedback first"
        )


class LogPolicyError(TabserveError):
    """The log keeps a model feature hashed, bucketed, truncated or not at all."""


@dataclass(frozen=True)
class Data:
    train: pd.DataFrame  # features + `_label` (+ `_ts` for logged rows)
    holdout: pd.DataFrame
    summary: dict[str, Any]


def gather(engine: Engine, settings: Settings, champion: StoredModel, window: Window) -> Data:
    retrain = settings.retrain
    name = champion.tag.split(":")[0]
    changed = unlearnable_columns(settings.monitoring.log_policy, champion.schema.names)
    if changed:
        raise LogPolicyError(
            f"monitoring.log_policy does not keep {', '.join(changed)} as sent: a challenger cannot learn "
            "from the log; keep those columns, or retrain by hand on the original data (tabserve train)"
        )
    logged = read_labelled(engine, name, window)
    logged[LABEL_COLUMN] = as_targets(logged[LABEL_COLUMN], champion.classes)
    unusable = int(logged[LABEL_COLUMN].isna().sum())
    logged = logged[logged[LABEL_COLUMN].notna()].reset_index(drop=True)
    needed = max(retrain.min_labels, retrain.min_holdout_rows + 20)
    if len(logged) < needed:
        raise NotEnoughLabelsError(
            f"{len(logged):,} labelled rows of {name} in {window.describe()}; at least {needed:,} are needed "
            f"(retrain.min_labels): send more /feedback or widen the window"
        )
    train, holdout = split_by_time(logged, retrain.holdout_share, retrain.min_holdout_rows)
    note = "original data not included (retrain.include_original: false)"
    original = pd.DataFrame()
    if retrain.include_original:
        original, note = original_rows(champion, settings.data)
        if not original.empty:
            original[LABEL_COLUMN] = as_targets(original[LABEL_COLUMN], champion.classes)
            original = original[original[LABEL_COLUMN].notna()]
    mixed = mix_rows(train, original, retrain.original_share, SEED)
    summary = {
        "window": window.to_json(),
        "labelled_rows": len(logged),
        "unusable_labels": unusable,
        "train_rows": len(mixed),
        "train_logged_rows": len(train),
        "train_original_rows": len(mixed) - len(train),
        "holdout_rows": len(holdout),
        "train_from": _iso(train[TS_COLUMN].min()),
        "holdout_from": _iso(holdout[TS_COLUMN].min()),
        "holdout_until": _iso(holdout[TS_COLUMN].max()),
        "original": note,
    }
    return Data(mixed, holdout, summary)


def _iso(moment: Any) -> str | None:
    return None if pd.isna(moment) else pd.Timestamp(moment).isoformat()


def _xy(frame: pd.DataFrame, champion: StoredModel) -> tuple[pd.DataFrame, pd.Series]:
    from tabserve.schema import coerce_frame

    return coerce_frame(frame, champion.schema), frame[LABEL_COLUMN]


def compare(
    champion: Predictor,
    challenger: Predictor,
    x: pd.DataFrame,
    y: pd.Series,
    rule: DecisionRule,
    resamples: int,
) -> Verdict:
    """Both models on the same held-out rows, then the rule."""
    first, second = champion.predict_frame(x, prepared=True), challenger.predict_frame(x, prepared=True)
    confidence = rule.interval_confidence
    if champion.is_classifier:
        columns = champion.output_columns[1:]
        comparisons = compare_classifiers(
            y.to_numpy(),
            first[columns].to_numpy(dtype=float),
            second[columns].to_numpy(dtype=float),
            np.asarray(champion.classes),
            resamples=resamples,
            seed=SEED,
            confidence=confidence,
        )
    else:
        comparisons = compare_regressors(
            y.to_numpy(dtype=float),
            first[PREDICTION_COLUMN].to_numpy(dtype=float),
            second[PREDICTION_COLUMN].to_numpy(dtype=float),
            resamples=resamples,
            seed=SEED,
            confidence=confidence,
        )
    return decide(comparisons, rule)


def rule_of(settings: Settings) -> DecisionRule:
    """The configured rule; a margin configured for a metric replaces its default (absolute)."""
    decision = settings.retrain.decision
    defaults = DecisionRule()
    return DecisionRule(
        alpha=decision.alpha,
        min_improvement=decision.min_improvement,
        margins={**defaults.margins, **decision.margins},
        relative_margins={
            metric: share
            for metric, share in defaults.relative_margins.items()
            if metric not in decision.margins
        },
    )


def run_loop(
    engine: Engine,
    settings: Settings,
    champion: StoredModel,
    request: Request,
    handoff: Handoff,
    report: Callable[[str], None] = logger.info,
    show: Callable[[str], None] = logger.info,
) -> Outcome:
    """One loop; LoopRefusedError / NotEnoughLabelsError (exit 2) before anything is recorded."""
    now = datetime.now(UTC)
    phases = Phases(report, show)
    with phases.phase("gate", f"retraining {champion.tag}: checking the last loop and new labels"):
        _gate(engine, settings, champion, now)
    with phases.phase("data", f"reading {request.window.describe()} of {champion.tag}"):
        data = gather(engine, settings, champion, request.window)
    run = audit.Run(
        evaluation_id=audit.new_evaluation_id(now),
        started_at=now,
        finished_at=None,
        status=audit.RUNNING,
        trigger=request.trigger,
        actor=request.actor,
        champion=champion.tag,
        challenger=None,
        label_watermark=newest_label(engine, champion.tag.split(":")[0]),
        record={},
    )
    record: dict[str, Any] = {
        "evaluation_id": run.evaluation_id,
        "trigger": request.trigger,
        "actor": request.actor,
        "champion": champion.tag,
        "data": data.summary,
    }
    audit.claim(engine, audit.Run(**{**run.__dict__, "record": record}))
    try:
        return _evaluate_and_hand_off(engine, settings, champion, request, handoff, data, run, record, phases)
    except BaseException as error:
        record["error"] = f"{type(error).__name__}: {error}"
        record["phases"] = phases.timings
        audit.finish(engine, run.evaluation_id, audit.FAILED, record)
        raise


def _evaluate_and_hand_off(
    engine: Engine,
    settings: Settings,
    champion: StoredModel,
    request: Request,
    handoff: Handoff,
    data: Data,
    run: audit.Run,
    record: dict[str, Any],
    phases: Phases,
) -> Outcome:
    x_train, y_train = _xy(data.train, champion)
    x_hold, y_hold = _xy(data.holdout, champion)
    summary = data.summary
    with phases.phase(
        "train", f"training the challenger on {summary['train_rows']:,} rows ({summary['original']})"
    ):
        fitted = fit_challenger(champion, x_train, y_train)
    with phases.phase("evaluate", f"comparing champion and challenger on {len(x_hold):,} held-out rows"):
        verdict = compare(
            champion.load_predictor(),
            fitted.predictor,
            x_hold,
            y_hold,
            rule_of(settings),
            settings.retrain.decision.resamples,
        )
    record["evaluation"] = verdict_json(verdict)
    lineage = {
        "parent": champion.tag,
        "evaluation_id": run.evaluation_id,
        "data_window": summary["window"],
        "rows": {key: summary[key] for key in ("train_logged_rows", "train_original_rows", "holdout_rows")},
        "train_from": summary["train_from"],
        "holdout_from": summary["holdout_from"],
        "holdout_until": summary["holdout_until"],
        "verdict": verdict.word,
    }
    with phases.phase("save", "saving the challenger with its lineage"):
        tag = save_challenger(
            champion,
            fitted,
            data.train.drop(columns=[LABEL_COLUMN]),
            (x_hold, y_hold),
            y_train,
            lineage,
            settings,
            verdict.accepted,
        )
    record["challenger"] = tag
    record["lineage"] = lineage
    audit.update_run(engine, run.evaluation_id, challenger=tag, record={**record, "phases": phases.timings})
    table = verdict_table(verdict, champion.tag, tag, len(x_hold))
    phases.show(table)  # before the hand-off: its failure must not hide the verdict
    if not verdict.accepted:
        record["decision"] = "rejected: the champion stays; the challenger is never served"
        record["phases"] = phases.timings
        audit.finish(engine, run.evaluation_id, audit.REJECTED, record)
        return Outcome(EXIT_REJECTED, record)
    with phases.phase("handoff", f"handing {tag} to the service as a candidate (shadow, then canary)"):
        variant = handoff.start(tag, run.evaluation_id, f"retrain {run.evaluation_id}: {verdict.reason}")
    record["decision"] = f"accepted: {tag} handed to the rollout as variant {variant}"
    record["rollout"] = {"variant": variant, "outcome": None}
    code = EXIT_ACCEPTED
    phases.show(f"handed off: {tag} is variant {variant}: shadow, then canary steps")
    if request.wait:
        audit.update_run(engine, run.evaluation_id, record={**record, "phases": phases.timings})
        with phases.phase("rollout", f"waiting for the rollout of {variant} (promotion or rollback)"):
            ended: RolloutOutcome = handoff.wait(
                variant, timedelta(minutes=settings.retrain.wait_timeout_minutes), phases.report
            )
        record["rollout"] = {"variant": variant, "outcome": ended.outcome, "reason": ended.reason}
        phases.show(f"rollout: {ended.outcome}: {ended.reason}")
        if ended.outcome != audit.PROMOTED:
            code = EXIT_REJECTED
    record["phases"] = phases.timings
    audit.finish(engine, run.evaluation_id, audit.ACCEPTED, record)
    return Outcome(code, record)
