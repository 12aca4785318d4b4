"""The native-thread limit in the scoring processes other than the service: the CLI and Spark's executors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabserve.cpu_budget import available_cores
from tabserve.model_store import StoredModel
from tests.factories import mixed_frame
from tests.servers import REPO

pytestmark = pytest.mark.skipif(available_cores() < 2, reason="needs 2 usable cores to see a limit")


def _score(config: Path, source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tabserve", "--config", str(config), "score", str(source), str(target)]
    return subprocess.run(
        [*command, "--model", "mixed:latest", "--quiet"], cwd=REPO, capture_output=True, text=True
    )


@pytest.mark.parametrize(("setting", "threads"), [(None, available_cores()), (1, 1)])
def test_score_limits_itself_to_its_cores_or_the_setting(
    mixed_model: StoredModel, tmp_path: Path, setting: int | None, threads: int
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"serving:\n  threads_per_worker: {'null' if setting is None else setting}\n")
    source = tmp_path / "in.csv"
    mixed_frame().to_csv(source, index=False)
    done = _score(config, source, tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"limited to {threads} thread(s)" in done.stderr


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from tabserve.batch.spark_scoring import _session

    session = _session("local[2]")
    yield session
    session.stop()


def _seen_on_executor(spark: Any, setting: int | None) -> list[int]:
    def probe(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import sklearn.ensemble  # noqa: F401  (loads OpenMP, as scoring does)

        from tabserve.batch.spark_scoring import _limit_task_threads
        from tabserve.cpu_budget import native_thread_counts

        _limit_task_threads(setting)
        for chunk in chunks:
            yield pd.DataFrame({"openmp": [native_thread_counts()["openmp"]] * len(chunk)})

    frame = spark.createDataFrame(pd.DataFrame({"x": range(8)})).repartition(2)
    return [row.openmp for row in frame.mapInPandas(probe, schema="openmp long").collect()]


@pytest.mark.parametrize(("setting", "threads"), [(None, 1), (2, 2)])
def test_spark_tasks_use_the_cores_spark_gave_them_or_the_setting(
    spark: Any, setting: int | None, threads: int
) -> None:
    # spark.task.cpus is 1 by default: local[2] runs two Python workers at once, one core each.
    assert set(_seen_on_executor(spark, setting)) == {threads}
