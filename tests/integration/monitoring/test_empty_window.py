"""`tabserve monitor` on a model nothing has been logged for: a verdict, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tabserve.model_store import StoredModel
from tests.servers import run_tabserve


def test_a_model_with_no_logged_rows_gets_not_enough_data(mixed_model: StoredModel, tmp_path: Path) -> None:
    config = tmp_path / "configuration.yaml"  # a fresh working directory: no database yet
    monitoring = {
        "sqlite_path": str(tmp_path / "var" / "predictions.db"),
        "reports_dir": str(tmp_path / "reports"),
        "workspace": str(tmp_path / "reports" / "workspace"),
    }
    config.write_text(yaml.safe_dump({"monitoring": monitoring}))
    result = run_tabserve(
        "monitor",
        "--quiet",
        "--config",
        str(config),
        "--model",
        mixed_model.tag,
        env={"TABSERVE_DATABASE_URL": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT ENOUGH DATA: 0 rows in the window" in result.stdout
    summaries = list((tmp_path / "reports").glob("*.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert (summary["verdict"], summary["window_rows"], summary["sampled_rows"]) == ("not_enough_data", 0, 0)
    assert not list((tmp_path / "reports").glob("*.html"))  # no comparison, so no report to open
