"""What the prediction log keeps of each column (`monitoring.log_policy`, issue 22).

Applied once, in `PredictionLogger.log()`, before a row is journalled, queued, spooled or
written: nothing downstream (the database, the journal, the spool, the quarantine, the drift
job's reports and workspace, which read the log) ever sees the raw value. The drift job and the
live drift gauges apply the same policy to the model's reference sample, so both sides of a
comparison are in the same form:

- `keep`: the value as sent;
- `drop`: the column is not logged (and not compared for drift);
- `hash`: keyed HMAC-SHA256 of the value's text (key: `TABSERVE_LOG_HASH_KEY`), so equal values
  still compare and categorical drift still works, while the value cannot be read back or
  guessed from a list of candidates without the key;
- `bucket`: a number becomes the lower edge of its range (`width`, or sorted `edges`), so
  numeric drift still works on ranges;
- `truncate`: the first `chars` characters of the value's text.

Rows keep their `log_id` identity: it is computed from the row as logged, after the policy.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tabserve.errors import ConfigurationError
from tabserve.predictions.tables import SHADOW_SUFFIX
from tabserve.schema import CATEGORICAL, NUMERIC, FeatureSchema
from tabserve.settings import ColumnLogRule, MonitoringSettings

LOG_HASH_KEY_ENV = "TABSERVE_LOG_HASH_KEY"
HASH_CHARS = 32  # 128 bits of the HMAC: no collision among a log's distinct values
KEEP, DROP, HASH, BUCKET, TRUNCATE = "keep", "drop", "hash", "bucket", "truncate"


def sampled(request_id: str, rate: float) -> bool:
    """Pure: whether the log keeps this request at `rate`, decided by its id alone.

    A hash, not a coin: every worker and replica decides the same for one id, a shadow's copy
    (`<id>:shadow`) follows its request, and feedback for an id that was not kept can be told so.
    The ids are random (uuid4), so the kept share is a uniform sample: drift and quality on it
    estimate those of all requests."""
    if rate >= 1:
        return True
    base = request_id.removesuffix(SHADOW_SUFFIX)
    unit = int.from_bytes(hashlib.blake2b(base.encode(), digest_size=8).digest(), "big") / 2**64
    return unit < rate


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def bucket_of(value: Any, rule: ColumnLogRule) -> float | None:
    """Pure: the lower edge of the value's range (None for a missing or non-numeric value)."""
    number = _number(value)
    if number is None:
        return None
    if rule.width is not None:
        return math.floor(number / rule.width) * rule.width
    edges = rule.edges or []
    return edges[max(bisect.bisect_right(edges, number) - 1, 0)]


@dataclass(frozen=True)
class LogPolicy:
    rules: Mapping[str, ColumnLogRule]
    hash_key: bytes | None = None

    @property
    def keeps_everything(self) -> bool:
        return all(rule.action == KEEP for rule in self.rules.values())

    def dropped(self) -> list[str]:
        return [name for name, rule in self.rules.items() if rule.action == DROP]

    def changes(self, columns: list[str]) -> bool:
        """True when the policy changes any of `columns` (what is logged is no longer what was sent)."""
        return any(self.rules[name].action != KEEP for name in columns if name in self.rules)

    def value(self, rule: ColumnLogRule, value: Any) -> Any:
        if value is None or rule.action == KEEP:
            return value
        if rule.action == HASH:
            assert self.hash_key is not None  # log_policy() refuses a hash rule without a key
            return hmac.new(self.hash_key, str(value).encode(), hashlib.sha256).hexdigest()[:HASH_CHARS]
        if rule.action == BUCKET:
            return bucket_of(value, rule)
        return str(value)[: rule.chars]  # truncate

    def apply(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """Pure: the features as the log keeps them."""
        kept: dict[str, Any] = {}
        for name, value in features.items():
            rule = self.rules.get(name)
            if rule is None:
                kept[name] = value
            elif rule.action != DROP:
                kept[name] = self.value(rule, value)
        return kept

    def apply_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.keeps_everything:
            return rows
        return [{**row, "features": self.apply(row["features"])} for row in rows]

    def compared_schema(self, schema: FeatureSchema) -> FeatureSchema:
        """The features drift can compare as logged: dropped ones (and text put in buckets, which
        logs as missing) left out; a number hashed or truncated is text, compared as a category;
        a bucketed number stays a number."""
        kept = []
        for feature in schema.features:
            rule = self.rules.get(feature.name)
            action = KEEP if rule is None else rule.action
            if action == DROP or (action == BUCKET and feature.kind != NUMERIC):
                continue  # not logged, or logged empty (a bucket of text is missing): nothing to compare
            if action in (HASH, TRUNCATE) and feature.kind == NUMERIC:
                feature = feature.model_copy(update={"kind": CATEGORICAL, "dtype": "object"})
            kept.append(feature)
        return FeatureSchema(features=kept)

    def apply_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A reference sample in the log's form: dropped columns gone, the others transformed."""
        if self.keeps_everything:
            return frame
        out = frame.drop(columns=[name for name in self.dropped() if name in frame.columns])
        for name, rule in self.rules.items():
            if name in out.columns and rule.action not in (KEEP, DROP):
                out[name] = [None if pd.isna(value) else self.value(rule, value) for value in out[name]]
        return out


def log_policy(settings: MonitoringSettings, environ: Mapping[str, str] | None = None) -> LogPolicy:
    """The configured policy; ConfigurationError if a column is hashed and no key is set."""
    environ = os.environ if environ is None else environ
    rules = {
        name: rule if isinstance(rule, ColumnLogRule) else ColumnLogRule(action=rule)
        for name, rule in settings.log_policy.items()
    }
    hashed = sorted(name for name, rule in rules.items() if rule.action == HASH)
    key = environ.get(LOG_HASH_KEY_ENV) or None
    if hashed and key is None:
        raise ConfigurationError(
            f"monitoring.log_policy hashes {', '.join(hashed)} but {LOG_HASH_KEY_ENV} is not set: "
            "set it to a secret (e.g. `openssl rand -hex 32`), the same for every process that "
            "logs or compares, or choose another action"
        )
    return LogPolicy(rules, key.encode() if key else None)
