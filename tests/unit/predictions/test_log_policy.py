"""The log policy: each action on values, frames and schemas; a hash rule without its key refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from tabserve.errors import ConfigurationError
from tabserve.predictions.log_policy import LOG_HASH_KEY_ENV, log_policy, sampled
from tabserve.predictions.logger import PredictionLogger
from tabserve.schema import FeatureSchema, FeatureSpec
from tabserve.settings import ColumnLogRule, MonitoringSettings
from tabserve.streaming.transport import Message
from tabserve.streaming.worker import WITHHELD_FIELD, as_dead_letter
from tests.factories import prediction_rows, raw_hits

KEY = {LOG_HASH_KEY_ENV: "k" * 32}
ROW: dict[str, Any] = {
    "email": "ana@example.org",
    "name": "Ana Lopez",
    "age": 37.4,
    "city": "paris",
    "income": "51.5",
}


def policy_of(rules: dict[str, object], environ: dict[str, str] = KEY):  # type: ignore[no-untyped-def]
    return log_policy(MonitoringSettings(log_policy=rules), environ)  # type: ignore[arg-type]


def test_each_action() -> None:
    policy = policy_of(
        {
            "email": "hash",
            "name": "drop",
            "age": {"action": "bucket", "width": 10},
            "income": {"action": "bucket", "edges": [0, 40, 60]},
            "city": {"action": "truncate", "chars": 2},
        }
    )
    logged = policy.apply(ROW)
    assert "name" not in logged
    assert logged["age"] == 30 and logged["income"] == 40 and logged["city"] == "pa"
    assert len(logged["email"]) == 32 and "ana" not in logged["email"]
    assert policy.apply({**ROW, "email": "ana@example.org"})["email"] == logged["email"]  # equal stays equal
    assert policy.apply({**ROW, "email": "bob@example.org"})["email"] != logged["email"]
    assert policy.apply({**ROW, "age": None, "income": "n/a"})["age"] is None
    assert policy.apply({**ROW, "income": -5})["income"] == 0  # below the first edge: the first range


def test_the_hash_depends_on_the_key() -> None:
    one = policy_of({"email": "hash"}).apply(ROW)["email"]
    other = policy_of({"email": "hash"}, {LOG_HASH_KEY_ENV: "another key"}).apply(ROW)["email"]
    assert one != other


def test_a_hash_rule_without_a_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=f"hashes email but {LOG_HASH_KEY_ENV}"):
        policy_of({"email": "hash", "age": "keep"}, {})
    assert policy_of({"name": "drop"}, {}).apply(ROW).keys() == ROW.keys() - {"name"}


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "bucket"},
        {"action": "bucket", "width": 1, "edges": [1]},
        {"action": "bucket", "edges": [2, 1]},
    ],
)
def test_a_bucket_needs_one_kind_of_ranges(rule: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ColumnLogRule.model_validate(rule)


def test_keep_everything_changes_nothing() -> None:
    policy = policy_of({"email": "keep"})
    rows = [{"features": dict(ROW)}]
    assert policy.keeps_everything and policy.apply_rows(rows) is rows


def test_a_reference_frame_and_schema_in_the_log_form() -> None:
    policy = policy_of(
        {"email": "hash", "name": "drop", "age": {"action": "bucket", "width": 10}, "n": "hash"}
    )
    frame = pd.DataFrame({"email": ["a@x", None], "name": ["A", "B"], "age": [31.0, 45.0], "n": [1.0, 2.0]})
    logged = policy.apply_frame(frame)
    assert list(logged.columns) == ["email", "age", "n"]
    assert (
        logged["email"].iloc[0] == policy.apply({"email": "a@x"})["email"] and logged["email"].iloc[1] is None
    )
    assert logged["age"].tolist() == [30, 40]
    schema = FeatureSchema(
        features=[
            FeatureSpec(name="email", kind="categorical", dtype="object"),
            FeatureSpec(name="name", kind="categorical", dtype="object"),
            FeatureSpec(name="age", kind="numeric", dtype="float64"),
            FeatureSpec(name="n", kind="numeric", dtype="float64"),
        ]
    )
    compared = policy.compared_schema(schema)
    assert compared.names == ["email", "age", "n"]
    bucketed_text = policy_of({"email": {"action": "bucket", "width": 1}}).compared_schema(schema)
    assert "email" not in bucketed_text.names
    assert compared.numeric == ["age"] and compared.categorical == ["email", "n"]


def test_a_dead_letter_keeps_the_record_under_the_policy_or_withholds_it() -> None:
    policy = policy_of({"email": "hash", "name": "drop"})
    message = Message("1-0", {"record": json.dumps(ROW), "request_id": "r1"})
    kept = as_dead_letter(message, policy)
    assert kept.fields["request_id"] == "r1"
    assert json.loads(kept.fields["record"]) == policy.apply(ROW)
    unreadable = as_dead_letter(Message("2-0", {"record": '{"email": "ana@example.org", '}), policy)
    assert "ana" not in json.dumps(unreadable.fields) and WITHHELD_FIELD in unreadable.fields
    assert as_dead_letter(message, policy_of({})) is message


@pytest.mark.parametrize("action", ["keep", "drop", "hash", "bucket", "truncate"])
def test_the_journal_and_the_spool_never_hold_what_the_policy_changes(tmp_path: Path, action: str) -> None:
    """A database that cannot be reached: every row is journalled, then spooled to local files."""
    rule: Any = {"action": "bucket", "width": 1} if action == "bucket" else action
    settings = MonitoringSettings.model_validate(
        {
            "log_policy": {"email": rule, "name": rule},
            "database_url": f"sqlite:///{tmp_path / 'missing-dir' / 'log.db'}",
            "spool_dir": str(tmp_path / "spool"),
        }
    )
    logger = PredictionLogger(
        settings.url, Path(settings.spool_dir), min_backoff_s=0.01, policy=log_policy(settings, KEY)
    )
    rows = prediction_rows("r", 0, 3)
    for row in rows:
        row["features"] = dict(ROW)
    logger.log(rows)
    journalled = raw_hits(tmp_path / "spool", (ROW["email"], ROW["name"]))  # before any write
    logger.close()
    spooled = raw_hits(tmp_path / "spool", (ROW["email"], ROW["name"]))
    assert logger.spooled_files()  # the rows are there, in the log's form
    if action == "keep":  # the control: the search finds what is there
        assert journalled and spooled
    else:
        assert journalled == [] and spooled == []
        assert ROW["city"].encode() in b"".join(path.read_bytes() for path in logger.spooled_files())


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.9])
def test_the_logged_share_is_the_sample_rate_within_binomial_bounds(rate: float) -> None:
    """Over 20 batches of 2,000 random request ids: each share within 4.5 standard deviations,
    and the batches' spread itself binomial (not a fixed pattern that happens to average right)."""
    import uuid

    n, batches = 2000, 20
    counts = [sum(sampled(uuid.uuid4().hex, rate) for _ in range(n)) for _ in range(batches)]
    sd = (n * rate * (1 - rate)) ** 0.5
    assert all(abs(count - n * rate) <= 4.5 * sd for count in counts), counts
    variance = sum((count - n * rate) ** 2 for count in counts) / batches
    assert 0.2 * sd**2 < variance < 3.0 * sd**2, (variance, sd**2)


def test_a_shadow_copy_follows_its_request_and_the_decision_is_stable() -> None:
    ids = [f"req-{i}" for i in range(500)]
    assert [sampled(i, 0.4) for i in ids] == [sampled(f"{i}:shadow", 0.4) for i in ids]
    assert [sampled(i, 0.4) for i in ids] == [sampled(i, 0.4) for i in ids]
    assert all(sampled(i, 1.0) for i in ids)


def test_the_logger_keeps_only_the_sampled_requests(tmp_path: Path) -> None:
    logger = PredictionLogger(f"sqlite:///{tmp_path / 'log.db'}", tmp_path / "spool", sample_rate=0.5)
    rows = prediction_rows("s", 0, 400)
    logger.log(rows)
    logger.close()
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.connect() as connection:
        logged = {row[0] for row in connection.execute(sqlalchemy.text("SELECT request_id FROM predictions"))}
    engine.dispose()
    assert logged == {row["request_id"] for row in rows if sampled(row["request_id"], 0.5)}
    assert 400 * 0.5 - 4.5 * 10 <= len(logged) <= 400 * 0.5 + 4.5 * 10  # sd = sqrt(400 * 0.25) = 10
