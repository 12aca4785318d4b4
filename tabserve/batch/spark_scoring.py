"""`--engine spark`: the same chunk scoring, distributed with pyspark's `mapInPandas`.

The model directory is shipped with `SparkContext.addFile` and loaded once per executor
process; each partition is scored by `file_scoring.score_chunk`, the local engine's function.
On a cluster, point `--spark-master` at it and make `tabserve` importable on the executors
(install the wheel there, or pass it with `--py-files`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tabserve.batch.file_scoring import is_parquet, score_chunk
from tabserve.cpu_budget import limit_native_threads, threads_per_worker
from tabserve.errors import DataError
from tabserve.model_store import StoredModel, get_model
from tabserve.predictor import ERROR_COLUMN, PREDICTION_COLUMN, Predictor
from tabserve.settings import Settings

_PREDICTORS: dict[str, Predictor] = {}  # per executor process: the model is loaded once


def _predictor(model_dir: str, tag: str, metadata: dict[str, Any]) -> Predictor:
    if model_dir not in _PREDICTORS:
        from pyspark import SparkFiles

        local = Path(SparkFiles.get(model_dir))
        _PREDICTORS[model_dir] = StoredModel(
            tag=tag, metadata=metadata, labels={}, path=local
        ).load_predictor()
    return _PREDICTORS[model_dir]


def _limit_task_threads(setting: int | None) -> None:
    """On the executor: the cores Spark gave this task (`spark.task.cpus`, default 1), or the setting.

    An executor runs `executor cores / task cpus` Python workers at once, each one task.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    limit_native_threads(threads_per_worker(context.cpus() if context else 1, 1, setting))


def _output_schema(input_schema: Any, predictor: Predictor) -> Any:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    prediction_type = StringType() if predictor.is_classifier else DoubleType()
    fields = [*input_schema.fields, StructField(PREDICTION_COLUMN, prediction_type)]
    fields += [StructField(name, DoubleType()) for name in predictor.output_columns[1:]]
    return StructType([*fields, StructField(ERROR_COLUMN, StringType())])


def _session(master: str | None) -> Any:
    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (its packages), not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    return (
        SparkSession.builder.master(master or "local[*]")
        .appName("tabserve-score")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def score_spark(
    settings: Settings, tag: str, source: str, target: str, strict: bool, master: str | None = None
) -> int:
    """Score `source` (file, directory or glob) into the Spark output directory `target`."""
    stored = get_model(tag)
    predictor = stored.load_predictor()
    markers = frozenset(settings.data.missing_markers)
    spark = _session(master)
    spark.sparkContext.addFile(str(stored.path), recursive=True)
    model_dir, metadata = stored.path.name, stored.metadata
    reader = spark.read
    frame = reader.parquet(source) if is_parquet(Path(source)) else reader.option("header", True).csv(source)
    frame = frame.toDF(*[name.strip() for name in frame.columns])
    classifier = predictor.is_classifier
    thread_setting = settings.serving.threads_per_worker

    def score_partitions(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        _limit_task_threads(thread_setting)
        local = _predictor(model_dir, tag, metadata)
        for chunk in chunks:
            out, _messages = score_chunk(chunk, local, markers, strict)
            if classifier:
                out[PREDICTION_COLUMN] = out[PREDICTION_COLUMN].map(lambda v: None if pd.isna(v) else str(v))
            yield out

    scored = frame.mapInPandas(score_partitions, schema=_output_schema(frame.schema, predictor))
    writer = scored.write.mode("overwrite")
    try:
        if target.lower().endswith((".parquet", ".pq")):
            writer.parquet(target)
            rows = int(spark.read.parquet(target).count())
        else:
            writer.option("header", True).csv(target)
            rows = int(spark.read.option("header", True).csv(target).count())
    except Exception as error:  # Spark wraps executor errors in Java exceptions
        text = str(error)
        if "strict mode:" in text:
            raise DataError(text[text.index("strict mode:") :].splitlines()[0]) from None
        raise
    return rows
