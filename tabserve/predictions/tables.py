"""Every table of the prediction-log database, in one `MetaData`: what the migrations build.

The prediction log (`predictions`, `label_changes`, `outcomes`, `monitoring_runs`) and the deployment's
shared state (`deployment_state`, `deployment_events`, `variant_stats`) live in one database,
so they are declared in one place. Nothing creates them from here: the migrations in
`tabserve/predictions/migrations/` do (`tabserve db upgrade`), and a unit test checks that the
migrations produce exactly these definitions.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()
LOG_ID_CHARS = 32
# A shadow's copy of a request is logged under the request id + this: no user saw its answer, and
# the A/B report pairs the two answers to one request by it (deployment/report_data.py).
SHADOW_SUFFIX = ":shadow"
ID_TYPE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

predictions = Table(
    "predictions",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("log_id", String(LOG_ID_CHARS), nullable=False, unique=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("model", String(200), nullable=False, index=True),
    Column("variant", String(64), nullable=False),
    Column("features", JSON, nullable=False),
    Column("prediction", JSON, nullable=False),
    Column("probabilities", JSON),
    Column("label", JSON),
    Column("label_ts", DateTime(timezone=True), index=True),  # the retraining loop reads labelled rows
    # The NAME of the API key that asked (never the key); NULL when keys are off or for jobs.
    Column("api_key", String(64)),
    # The rollout guards and the A/B report read one variant's rows since a time
    # (`variant_outcomes`): without it, every check scanned the whole log.
    Index("ix_predictions_variant_ts", "variant", "ts"),
)

# Every change of ground truth (a first label, or an explicit correction), never updated.
label_changes = Table(
    "label_changes",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("log_id", String(LOG_ID_CHARS), nullable=False),
    Column("old_label", JSON(none_as_null=True)),  # SQL NULL: there was no label
    Column("new_label", JSON, nullable=False),
    Column("actor", String(200)),
    Column("reason", String(500)),
)

# Business outcomes of a request (a click, a conversion, revenue), one per (request id, name):
# the unique constraint makes a retried event count once (the first value is kept).
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("request_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("actor", String(200)),
    UniqueConstraint("request_id", "name", name="uq_outcomes_request_id_name"),
)

monitoring_runs = Table(
    "monitoring_runs",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("model", String(200), nullable=False, index=True),
    Column("summary", JSON, nullable=False),
)

# One row: the deployment's current state and its version (writers compare and swap on it).
deployment_state = Table(
    "deployment_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every change of the deployment state, with time, actor, action and reason (the audit trail).
deployment_events = Table(
    "deployment_events",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("state", JSON, nullable=False),
)

# Requests, errors and a latency histogram per variant, flushed by each worker.
variant_stats = Table(
    "variant_stats",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("variant", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("latency", JSON, nullable=False),
)

# One row per retraining loop (`tabserve retrain`): what triggered it, the data, the evaluation,
# the decision and the rollout's outcome. `in_flight` is 1 while the loop runs and NULL after:
# its unique constraint lets only one loop run at a time, in every process and replica.
retrain_runs = Table(
    "retrain_runs",
    metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("evaluation_id", String(64), nullable=False, unique=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True)),
    Column("in_flight", Integer, unique=True),
    Column("status", String(32), nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("champion", String(200), nullable=False),
    Column("challenger", String(200)),
    Column("label_watermark", DateTime(timezone=True)),
    Column("record", JSON, nullable=False),
)
