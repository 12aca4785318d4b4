"""One configuration, one prediction log: wherever a command runs, relative paths in the
configuration are relative to the configuration file (settings.resolve_paths)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tabserve.model_store import StoredModel
from tabserve.predictions.logger import open_prediction_logger
from tabserve.predictor import PREDICTION_COLUMN
from tabserve.settings import load_settings
from tests.servers import run_tabserve

LOGGED = 60

CONFIG = """
monitoring:
  sqlite_path: var/predictions.db
  spool_dir: var/spool
  reports_dir: reports
  workspace: reports/workspace
  min_samples: 50
"""


def test_monitor_from_another_folder_reads_the_rows_the_service_wrote(
    default_model: StoredModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "deploy" / "configuration.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    service_cwd, user_cwd = tmp_path / "project", tmp_path / "home"
    service_cwd.mkdir()
    user_cwd.mkdir()

    monkeypatch.chdir(service_cwd)  # `tabserve serve` runs the service from the project folder
    monkeypatch.delenv("TABSERVE_DATABASE_URL", raising=False)
    settings = load_settings(config)
    writer = open_prediction_logger(settings.monitoring)
    assert writer is not None
    reference = default_model.load_reference().head(LOGGED)
    now = datetime.now(UTC)
    writer.log(
        [
            {
                "request_id": f"r{i}",
                "ts": now,
                "model": default_model.tag,
                "variant": "default",
                "features": {name: float(row[name]) for name in default_model.schema.names},
                "prediction": row[PREDICTION_COLUMN],
                "probabilities": None,
            }
            for i, (_, row) in enumerate(reference.iterrows())
        ]
    )
    writer.close()

    result = run_tabserve(
        "monitor",
        "--quiet",
        "--config",
        str(config),
        "--model",
        default_model.tag,
        env={"TABSERVE_DATABASE_URL": ""},
        cwd=user_cwd,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert f"rows {LOGGED} (sampled {LOGGED})" in result.stdout, result.stdout
    summaries = list((config.parent / "reports").glob("*.json"))
    assert [json.loads(path.read_text())["window_rows"] for path in summaries] == [LOGGED]
    assert not (user_cwd / "var").exists() and not (service_cwd / "var").exists()
