"""One typed settings object, loaded from `configuration.yaml` and validated.

Environment variables override deployment-specific values only (see `ENV_OVERRIDES`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tabserve.errors import ConfigurationError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configuration.yaml"
CONFIG_PATH_ENV = "TABSERVE_CONFIG"
BUILTIN_DATASET_PREFIX = "sklearn:"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EstimatorSettings(_Frozen):
    estimator: str = Field(description="Import path of a scikit-learn estimator class.")
    params: dict[str, Any] = Field(default_factory=dict)


class DataSettings(_Frozen):
    source: str = Field(
        default="sklearn:breast_cancer",
        description="'sklearn:breast_cancer' (bundled, no download) or a CSV/Parquet path.",
    )
    target: str = "diagnosis"
    id_column: str | None = None
    numeric: list[str] | None = Field(default=None, description="Force these columns numeric.")
    categorical: list[str] | None = Field(default=None, description="Force these categorical.")
    drop: list[str] = Field(default_factory=list, description="Columns never used as features.")
    missing_markers: list[str] = Field(
        default_factory=lambda: ["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
    )


class TrainingSettings(_Frozen):
    task: Literal["auto", "classification", "regression"] = "auto"
    test_size: float = Field(default=0.25, gt=0, lt=1)
    random_state: int = 42
    reference_rows: int = Field(default=5000, ge=10)
    max_categories: int = Field(default=50, ge=2)
    classifier: EstimatorSettings = EstimatorSettings(
        estimator="sklearn.ensemble.HistGradientBoostingClassifier"
    )
    regressor: EstimatorSettings = EstimatorSettings(
        estimator="sklearn.ensemble.HistGradientBoostingRegressor"
    )


class ModelSettings(_Frozen):
    name: str = Field(default="breast_cancer", pattern=r"^[a-z0-9_][a-z0-9_.-]*$")
    stage: str = "staging"


class BatchingSettings(_Frozen):
    max_batch_size: int = Field(default=128, ge=2)
    max_latency_ms: int = Field(default=2000, ge=10)


class ServingSettings(_Frozen):
    model: str | None = Field(default=None, description="Tag to serve; default NAME:latest.")
    max_batch_records: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    batching: BatchingSettings = BatchingSettings()
    gc_threshold: int = Field(default=10_000, ge=700)
    file_chunk_rows: int = Field(default=50_000, ge=1, description="Rows per chunk in file scoring.")
    task_dir: str = Field(default="var/tasks", description="Progress of file-scoring tasks.")


class MonitoringSettings(_Frozen):
    log_predictions: bool = True
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; null = SQLite file at sqlite_path."
    )
    sqlite_path: str = "var/predictions.db"
    spool_dir: str = "var/spool"
    max_queued_batches: int = Field(default=10_000, ge=1)
    write_batch_rows: int = Field(default=1_000, ge=1)
    flush_interval_ms: int = Field(default=200, ge=1)
    window_last: int = Field(default=5_000, ge=1, description="Default window: the last N rows.")
    min_samples: int = Field(default=200, ge=1)
    min_labels: int = Field(default=50, ge=1)
    sample_size: int = Field(default=20_000, ge=100)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    num_method: str | None = None
    num_threshold: float | None = None
    cat_method: str | None = None
    cat_threshold: float | None = None
    quality_drop: float = Field(default=0.05, ge=0)
    reports_dir: str = "reports"
    workspace: str = "reports/workspace"
    metrics_refresh_s: float = Field(default=15.0, gt=0)

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"


KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class StreamingSettings(_Frozen):
    transport: Literal["redis", "kafka"] = "redis"
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    input_stream: str = "tabserve:input"
    output_stream: str = "tabserve:output"
    dead_letter_stream: str = "tabserve:dead-letter"
    group: str = "tabserve"
    batch_size: int = Field(default=256, ge=1, description="Messages scored together.")
    max_wait_ms: int = Field(default=20, ge=0, description="How long to wait to fill a micro-batch.")
    block_ms: int = Field(default=1000, ge=1, description="Idle wait for new messages.")
    claim_idle_ms: int = Field(default=30_000, ge=1, description="Reclaim messages pending this long.")
    output_maxlen: int | None = Field(default=None, ge=1, description="Trim the output stream (approx).")

    @model_validator(mode="after")
    def _kafka_topic_names(self) -> StreamingSettings:
        if self.transport == "kafka":
            for name in ("input_stream", "output_stream", "dead_letter_stream", "group"):
                if not KAFKA_TOPIC.match(getattr(self, name)):
                    raise ValueError(f"{name} {getattr(self, name)!r} is not a Kafka name ([A-Za-z0-9._-])")
        return self


class Settings(_Frozen):
    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    streaming: StreamingSettings = StreamingSettings()

    @property
    def served_tag(self) -> str:
        return self.serving.model or f"{self.model.name}:latest"


# env var -> (section, key): deployment-specific values only.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "TABSERVE_MODEL": ("serving", "model"),
    "TABSERVE_DATABASE_URL": ("monitoring", "database_url"),
    "TABSERVE_REDIS_URL": ("streaming", "redis_url"),
    "TABSERVE_STREAM_TRANSPORT": ("streaming", "transport"),
    "TABSERVE_KAFKA_BOOTSTRAP_SERVERS": ("streaming", "kafka_bootstrap_servers"),
    "TABSERVE_DRIFT_SHARE": ("monitoring", "drift_share"),
    "TABSERVE_QUALITY_DROP": ("monitoring", "quality_drop"),
    "TABSERVE_MIN_SAMPLES": ("monitoring", "min_samples"),
}


def _format_error(error: ValidationError, path: Path) -> str:
    lines = [f"invalid configuration in {path}:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        reason = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {where}: {reason}")
    return "\n".join(lines)


def apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """Return a copy of `raw` with the allowed environment overrides applied."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for env_name, (section, key) in ENV_OVERRIDES.items():
        if environ.get(env_name):
            merged.setdefault(section, {})[key] = environ[env_name]
    return merged


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the configuration; raise ConfigurationError naming the bad key."""
    environ = dict(os.environ) if environ is None else environ
    config_path = Path(path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)
    if not config_path.is_file():
        raise ConfigurationError(f"configuration file not found: {config_path}")
    raw = yaml.safe_load(config_path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{config_path}: the top level must be a mapping")
    try:
        return Settings.model_validate(apply_env_overrides(raw, environ))
    except ValidationError as error:
        raise ConfigurationError(_format_error(error, config_path)) from None
