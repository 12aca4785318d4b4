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

from tabserve.cleaning import DEFAULT_MISSING_MARKERS
from tabserve.errors import ConfigurationError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configuration.yaml"
CONFIG_PATH_ENV = "TABSERVE_CONFIG"
BUILTIN_DATASET_PREFIX = "sklearn:"
# Answered without an API key: health, metrics, the OpenAPI document and its page.
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/", "/static_content")


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
    sep: str | None = Field(
        default=None,
        description="A CSV file's delimiter (, ; | or tab); null = detected from its first lines.",
    )
    id_column: str | None = None
    numeric: list[str] | None = Field(default=None, description="Force these columns numeric.")
    categorical: list[str] | None = Field(default=None, description="Force these categorical.")
    datetime: list[str] | None = Field(
        default=None, description="Force these dates/times (ISO 8601 text; default: detected)."
    )
    drop: list[str] = Field(default_factory=list, description="Columns never used as features.")
    missing_markers: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING_MARKERS))


class TrainingSettings(_Frozen):
    task: Literal["auto", "classification", "regression"] = "auto"
    test_size: float = Field(default=0.25, gt=0, lt=1)
    random_state: int = 42
    reference_rows: int = Field(default=5000, ge=10)
    max_categories: int = Field(default=50, ge=2)
    importance_rows: int = Field(
        default=2_000,
        ge=10,
        description="Held-out rows for permutation importance (the drift alarm's weights).",
    )
    importance_repeats: int = Field(
        default=5, ge=1, description="Shuffles per feature for permutation importance."
    )
    classifier: EstimatorSettings = EstimatorSettings(
        estimator="sklearn.ensemble.HistGradientBoostingClassifier"
    )
    regressor: EstimatorSettings = EstimatorSettings(
        estimator="sklearn.ensemble.HistGradientBoostingRegressor"
    )


MODEL_NAME_PATTERN = r"^[a-z0-9_][a-z0-9_.-]*$"


class ModelSettings(_Frozen):
    name: str = Field(default="breast_cancer", pattern=MODEL_NAME_PATTERN)
    stage: str = "staging"


class BatchingSettings(_Frozen):
    max_batch_size: int = Field(default=128, ge=2)
    max_latency_ms: int = Field(default=2000, ge=10)


class TracingSettings(_Frozen):
    """BentoML's `tracing` configuration, passed on (`tabserve.serving.tracing`).

    Without an `exporter_type` no request is traced: BentoML's tracing middleware then skips them.
    """

    exporter_type: Literal["zipkin", "jaeger", "otlp", "in_memory"] | None = None
    sample_rate: float | None = Field(default=None, ge=0, le=1)
    excluded_urls: list[str] | None = Field(default=None, description="Regular expressions of URLs.")
    timeout: int | None = Field(default=None, ge=1)
    otlp: dict[str, Any] | None = Field(default=None, description="protocol, endpoint, ... (BentoML's).")
    zipkin: dict[str, Any] | None = None
    jaeger: dict[str, Any] | None = None


class ExplanationSettings(_Frozen):
    """Per-prediction explanations (`/explain`, docs/explanations.md)."""

    max_batch_records: int = Field(
        default=100, ge=1, description="Records per /explain_batch call; more: 413."
    )
    background_rows: int = Field(
        default=32, ge=1, description="Permutation fallback: reference rows standing for an absent column."
    )
    max_evals: int = Field(
        default=256,
        ge=3,
        description="Permutation fallback: model calls per explained row (at least 2 x columns + 1).",
    )
    permutation_tolerance: float = Field(
        default=1e-6, gt=0, description="Permutation fallback: allowed |base + sum - output| (float error)."
    )
    global_rows: int = Field(
        default=500, ge=10, description="Reference rows explained for the global view (training, monitor)."
    )
    global_rows_permutation: int = Field(
        default=50, ge=10, description="The same, for a model explained by the (costlier) permutation method."
    )


class ServingSettings(_Frozen):
    model: str | None = Field(default=None, description="Tag to serve; default NAME:latest.")
    max_batch_records: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="JSON bodies; more: 413.")
    max_upload_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=1024, description="/score_file uploads (spooled to disk); more: 413."
    )
    max_concurrency: int = Field(
        default=128, ge=1, description="Requests in progress per worker; more: 429 with Retry-After."
    )
    max_large_requests: int = Field(
        default=2, ge=1, description="Requests with a body over 1 MiB in progress per worker; more wait."
    )
    batching: BatchingSettings = BatchingSettings()
    gc_threshold: int = Field(default=10_000, ge=700)
    file_chunk_rows: int = Field(default=50_000, ge=1, description="Rows per chunk in file scoring.")
    task_dir: str = Field(default="var/tasks", description="Progress of file-scoring tasks.")
    workers: int | None = Field(
        default=None, ge=1, description="Service worker processes; null = one per usable core."
    )
    threads_per_worker: int | None = Field(
        default=None,
        ge=1,
        description="Native (OpenMP, BLAS) threads per scoring process; null = cores // workers.",
    )
    tracing: TracingSettings = TracingSettings()
    explanations: ExplanationSettings = ExplanationSettings()
    api_keys_required: bool = Field(
        default=False,
        description="Refuse to start without API keys (TABSERVE_API_KEYS or api_keys_file); the image: true.",
    )
    api_keys_file: str | None = Field(
        default=None, description="name:sha256hex[:rights] per line; re-read when it changes (rotation)."
    )
    open_paths: list[str] = Field(
        default_factory=lambda: list(OPEN_PATHS),
        description="Paths answered without an API key (a folder covers what is under it).",
    )


class LiveDriftSettings(_Frozen):
    """Per-feature PSI and estimated quality over the last rows of the log, on the service's /metrics."""

    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0, description="Seconds between two refreshes.")
    window_rows: int = Field(default=10_000, ge=1, description="The last N logged rows per variant.")
    min_rows: int = Field(default=200, ge=1, description="Fewer rows in the window: gauges not updated.")


LogAction = Literal["keep", "drop", "hash", "bucket", "truncate"]


class ColumnLogRule(_Frozen):
    """What the prediction log keeps of one column (tabserve/predictions/log_policy.py)."""

    action: LogAction
    width: float | None = Field(default=None, gt=0, description="bucket: ranges of this width.")
    edges: list[float] | None = Field(default=None, min_length=1, description="bucket: or these lower edges.")
    chars: int = Field(default=4, ge=0, description="truncate: keep this many characters.")

    @model_validator(mode="after")
    def _bucket_ranges(self) -> ColumnLogRule:
        if self.action == "bucket" and (self.width is None) == (self.edges is None):
            raise ValueError("bucket needs one of width or edges")
        if self.edges is not None and self.edges != sorted(set(self.edges)):
            raise ValueError("edges must be increasing")
        return self


class MonitoringSettings(_Frozen):
    log_predictions: bool = True
    log_sample_rate: float = Field(
        default=1.0, gt=0, le=1, description="Share of requests logged, chosen by request id (1: all)."
    )
    log_policy: dict[str, LogAction | ColumnLogRule] = Field(
        default_factory=dict,
        description="column -> keep|drop|hash|bucket|truncate, or {action, width|edges|chars}; default keep.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; null = SQLite file at sqlite_path."
    )
    sqlite_path: str = "var/predictions.db"
    spool_dir: str = "var/spool"
    max_queued_batches: int = Field(default=10_000, ge=1)
    write_batch_rows: int = Field(default=1_000, ge=1)
    flush_interval_ms: int = Field(default=200, ge=1)
    journal: bool = Field(default=True, description="Journal answered rows locally: they survive kill -9.")
    journal_fsync: bool = Field(default=False, description="fsync each journal write (machine crash).")
    journal_segment_mb: int = Field(default=16, ge=1)
    window_last: int = Field(default=5_000, ge=1, description="Default window: the last N rows.")
    min_samples: int = Field(default=200, ge=1)
    min_labels: int = Field(default=50, ge=1)
    sample_size: int = Field(default=20_000, ge=100)
    max_sample_cells: int = Field(
        default=1_000_000,
        ge=1,
        description="Drift sample: at most this many rows x columns (wide tables: fewer rows, >= 5,000).",
    )
    drift_share: float = Field(default=0.5, gt=0, le=1, description="Alarm: this share of features drift.")
    alarm_top_k: int = Field(
        default=3, ge=0, description="Alarm: one of the k most important features drifts (0: rule off)."
    )
    alarm_min_importance: float = Field(
        default=0.05, ge=0, lt=1, description="A top-k feature carries at least this share of the importance."
    )
    importance_drift_share: float = Field(
        default=0.3, gt=0, le=1, description="Alarm: drifted features carry this share of the importance."
    )
    num_method: str | None = None
    num_threshold: float | None = None
    cat_method: str | None = None
    cat_threshold: float | None = None
    drift_max_categories: int = Field(
        default=30,
        ge=2,
        description="Drift: values beyond the reference's N most frequent count as one '(other)'.",
    )
    quality_drop: float = Field(default=0.05, ge=0)
    reports_dir: str = "reports"
    keep_reports: int = Field(default=100, ge=1, description="Drift reports kept (the newest runs).")
    keep_report_days: float = Field(default=30, gt=0, description="Drift reports older than this go.")
    workspace: str = "reports/workspace"
    metrics_refresh_s: float = Field(default=15.0, gt=0)
    # Quality without labels (tabserve/monitoring/estimated_quality.py) and live drift metrics.
    estimated_metric: Literal["accuracy", "f1", "roc_auc"] = Field(
        default="accuracy", description="The estimated metric judged against quality_drop."
    )
    live_drift: LiveDriftSettings = LiveDriftSettings()
    attribution_ndcg_threshold: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Attribution drift alarm: nDCG of the window's ranking below this.",
    )
    attribution_rows: int = Field(
        default=500, ge=10, description="Window rows explained for attribution drift."
    )

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
    follow_interval_s: float = Field(
        default=30.0, ge=0, description="Re-read the served model this often, between batches (0: never)."
    )

    @model_validator(mode="after")
    def _kafka_topic_names(self) -> StreamingSettings:
        if self.transport == "kafka":
            for name in ("input_stream", "output_stream", "dead_letter_stream", "group"):
                if not KAFKA_TOPIC.match(getattr(self, name)):
                    raise ValueError(f"{name} {getattr(self, name)!r} is not a Kafka name ([A-Za-z0-9._-])")
        return self


Strategy = Literal["single", "blue-green", "canary", "ab", "shadow"]
VARIANT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_VARIANT = "default"
OutcomeKind = Literal["rate", "value"]


class Policy(_Frozen):
    """Who gets the traffic. The configured policy is the start; the admin API changes it.

    single / blue-green: `active` takes everything. canary: `canary_percent` of the traffic
    goes to `candidate`, the rest to `champion`. ab: a sticky split by `weights`. shadow:
    `champion` answers, `candidate` scores a copy off the response path.
    """

    strategy: Strategy = "single"
    active: str | None = None
    champion: str | None = None
    candidate: str | None = None
    canary_percent: float = Field(default=0.0, ge=0, le=100)
    weights: dict[str, float] = Field(default_factory=dict)

    @property
    def primary(self) -> str | None:
        """The variant that answers when no split applies (file scoring, no sticky key)."""
        return self.active if self.strategy in ("single", "blue-green") else self.champion

    def problems(self, names: list[str]) -> list[str]:
        """What is wrong with this policy for these variants (empty: nothing)."""
        found = []
        for role in ("active", "champion", "candidate"):
            value = getattr(self, role)
            if value is not None and value not in names:
                found.append(f"{role}: no variant {value!r} (variants: {', '.join(names)})")
        if self.strategy in ("single", "blue-green") and self.active is None:
            found.append(f"active: {self.strategy} needs the variant that takes the traffic")
        if self.strategy in ("canary", "shadow"):
            if self.champion is None or self.candidate is None:
                found.append(f"champion/candidate: {self.strategy} needs both")
            elif self.champion == self.candidate:
                found.append("candidate: must differ from champion")
        if self.strategy == "ab":
            unknown = [name for name in self.weights if name not in names]
            if unknown:
                found.append(f"weights: no variant {unknown[0]!r}")
            if any(weight < 0 for weight in self.weights.values()) or sum(self.weights.values()) <= 0:
                found.append("weights: need non-negative weights with a positive sum")
        return found


class RolloutSettings(_Frozen):
    """Progressive delivery of `candidate`: steps of canary percent, each judged by guards."""

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    min_requests: int = Field(default=200, ge=1, description="Candidate requests before a step is judged.")
    min_seconds: float = Field(default=60.0, ge=0, description="Time at a step before the next one.")
    shadow_first: bool = Field(
        default=False,
        description="`tabserve deploy rollout` shadows the candidate before the first step "
        "(a candidate added through /admin/candidate always does).",
    )
    check_interval_s: float = Field(default=5.0, gt=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=250.0, gt=0)
    max_prediction_psi: float = Field(
        default=0.2, gt=0, description="Candidate vs champion predictions on the same traffic."
    )
    quality_drop: float = Field(default=0.05, ge=0, description="Allowed drop vs champion on feedback.")
    quality_alpha: float = Field(default=0.01, gt=0, lt=1, description="A drop must be this significant.")
    min_labels: int = Field(default=50, ge=1)
    sample_size: int = Field(default=5_000, ge=100, description="Logged predictions read per check.")
    outcome_guards: dict[str, float] = Field(
        default_factory=dict,
        description="Outcome name -> allowed drop vs champion (rates: absolute; values: relative).",
    )
    outcome_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="An outcome drop must be this significant."
    )

    @model_validator(mode="after")
    def _steps_climb_to_100(self) -> RolloutSettings:
        if any(not 0 < step <= 100 for step in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError("steps must increase, each in (0, 100]")
        if self.steps[-1] != 100:
            raise ValueError("the last step must be 100 (the candidate takes all traffic)")
        return self


class DeploymentSettings(_Frozen):
    variants: dict[str, str] = Field(
        default_factory=dict, description="name -> model tag; empty = one variant serving serving.model."
    )
    policy: Policy = Policy()
    sticky_header: str = Field(default="X-User-ID", description="Sticky key for ab and canary.")
    sticky_field: str | None = Field(default=None, description="Else this field of the record.")
    refresh_ms: int = Field(default=500, ge=10, description="How soon every worker sees a change.")
    stats_flush_ms: int = Field(default=1000, ge=10)
    stats_retention_days: float = Field(default=30, gt=0, description="Per-variant numbers kept this long.")
    shadow_max_pending: int = Field(
        default=10_000, ge=1, description="Records waiting for the shadow; more are dropped (counted)."
    )
    rollout: RolloutSettings = RolloutSettings()
    outcomes: dict[str, OutcomeKind] = Field(
        default_factory=dict,
        description="Business outcomes /outcome accepts: name -> rate (0/1 per request) or value (a number).",
    )

    @model_validator(mode="after")
    def _names(self) -> DeploymentSettings:
        for name in self.variants:
            if not VARIANT_NAME.match(name):
                raise ValueError(f"variant name {name!r}: use letters, digits, '_', '.', '-'")
        for name in self.outcomes:
            if not VARIANT_NAME.match(name):
                raise ValueError(f"outcome name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        for name, drop in self.rollout.outcome_guards.items():
            if name not in self.outcomes:
                raise ValueError(f"rollout.outcome_guards: {name!r} is not one of deployment.outcomes")
            if drop < 0:
                raise ValueError(f"rollout.outcome_guards: {name}: the allowed drop must be >= 0")
        return self


class RetrainDecisionSettings(_Frozen):
    """When a challenger replaces the champion: the rule `tabserve retrain` applies (docs/retraining.md)."""

    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="One-sided significance level; bounds the false-accept rate."
    )
    min_improvement: float = Field(
        default=0.0, ge=0, description="The primary metric must improve at least this much (its own units)."
    )
    margins: dict[str, float] = Field(
        default_factory=dict,
        description="Non-inferiority margin per secondary metric (log_loss, roc_auc, rmse); unset: defaults.",
    )
    resamples: int = Field(default=2_000, ge=100, description="Paired bootstrap resamples per interval.")


class RetrainSettings(_Frozen):
    """The retraining loop: data from the prediction log, a challenger, a paired test, a rollout."""

    window_last: int = Field(
        default=50_000, ge=1, description="Default window: the last N labelled rows of the served model."
    )
    min_labels: int = Field(default=500, ge=20, description="Labelled rows needed in the window.")
    holdout_share: float = Field(
        default=0.3, gt=0, lt=1, description="The most recent share of labelled rows: evaluation only."
    )
    min_holdout_rows: int = Field(default=200, ge=20, description="At least this many held-out rows.")
    include_original: bool = Field(
        default=False, description="Add the champion's original training data when still readable."
    )
    original_share: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="Original rows make at most this share of the training rows (new rows outvote old).",
    )
    decision: RetrainDecisionSettings = RetrainDecisionSettings()
    trigger: Literal["manual", "alarm"] = Field(
        default="manual", description="alarm: `tabserve monitor` runs the loop when its verdict is an alarm."
    )
    cooldown_minutes: float = Field(default=60.0, ge=0, description="Minimum time between two loops.")
    stale_after_minutes: float = Field(
        default=180.0, gt=0, description="A loop still 'running' after this is taken as dead."
    )
    wait_timeout_minutes: float = Field(
        default=60.0, gt=0, description="--wait gives up on the rollout after this (exit 2)."
    )


class Settings(_Frozen):
    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    streaming: StreamingSettings = StreamingSettings()
    deployment: DeploymentSettings = DeploymentSettings()
    retrain: RetrainSettings = RetrainSettings()

    @model_validator(mode="after")
    def _one_way_to_name_models(self) -> Settings:
        if self.deployment.variants and self.serving.model:
            raise ValueError("serving.model and deployment.variants both name models: keep one")
        problems = self.deployment.policy.model_copy(update=self._policy_defaults()).problems(
            list(self.variants)
        )
        if problems:
            raise ValueError("deployment.policy: " + "; ".join(problems))
        return self

    @property
    def served_tag(self) -> str:
        """The primary variant's model: what file scoring, streaming and drift default to."""
        return self.variants[str(self.policy.primary)]

    @property
    def variants(self) -> dict[str, str]:
        """Variant name -> model tag (one variant, `default`, unless variants are declared)."""
        return dict(self.deployment.variants) or {
            DEFAULT_VARIANT: self.serving.model or f"{self.model.name}:latest"
        }

    def _policy_defaults(self) -> dict[str, str]:
        names = list(self.variants)
        policy = self.deployment.policy
        defaults = {"active": names[0], "champion": names[0]}
        if len(names) > 1:
            defaults["candidate"] = names[1]
        return {role: value for role, value in defaults.items() if getattr(policy, role) is None}

    @property
    def policy(self) -> Policy:
        """The configured policy with unnamed roles filled in: the first variant is the champion."""
        return self.deployment.policy.model_copy(update=self._policy_defaults())


# env var -> (section, key): deployment-specific values only.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "TABSERVE_MODEL": ("serving", "model"),
    "TABSERVE_API_KEYS_REQUIRED": ("serving", "api_keys_required"),
    "TABSERVE_API_KEYS_FILE": ("serving", "api_keys_file"),
    "TABSERVE_WORKERS": ("serving", "workers"),
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
        where = ".".join(str(part) for part in item["loc"]) or "configuration"
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


# (section, key) of every setting that names a file or folder: relative to the configuration file.
PATH_SETTINGS: tuple[tuple[str, str], ...] = (
    ("serving", "task_dir"),
    ("monitoring", "sqlite_path"),
    ("monitoring", "spool_dir"),
    ("monitoring", "reports_dir"),
    ("monitoring", "workspace"),
)


def _resolved(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(base / path)


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths (defaults included) made relative to `base`, the configuration's folder.

    One rule for every command and the service: `tabserve serve` runs the service from the
    project folder while the jobs run wherever the user is, and paths taken from the current
    directory sent the same configuration to two prediction logs. Absolute paths stay as they are.
    """
    sections: dict[str, dict[str, str]] = {}
    for section, key in PATH_SETTINGS:
        value = getattr(getattr(settings, section), key)
        sections.setdefault(section, {})[key] = _resolved(value, base)
    source = settings.data.source
    if not source.startswith(BUILTIN_DATASET_PREFIX):
        sections["data"] = {"source": _resolved(source, base)}
    return settings.model_copy(
        update={
            section: getattr(settings, section).model_copy(update=values)
            for section, values in sections.items()
        }
    )


def config_file(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Path:
    """The configuration file a command reads: --config, else $TABSERVE_CONFIG, else the default."""
    environ = dict(os.environ) if environ is None else environ
    return Path(path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH).absolute()


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the configuration; raise ConfigurationError naming the bad key.

    Relative paths in it are relative to the file's folder (`resolve_paths`).
    """
    environ = dict(os.environ) if environ is None else environ
    config_path = config_file(path, environ)
    if not config_path.is_file():
        raise ConfigurationError(f"configuration file not found: {config_path}")
    raw = yaml.safe_load(config_path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{config_path}: the top level must be a mapping")
    try:
        settings = Settings.model_validate(apply_env_overrides(raw, environ))
    except ValidationError as error:
        raise ConfigurationError(_format_error(error, config_path)) from None
    return resolve_paths(settings, config_path.parent)
