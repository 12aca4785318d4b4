"""The loop through the real `tabserve` command on a SQLite log: what it refuses, what it records,
and a covariate shift that gives no better model (REJECT: nothing is handed to any service).

The accepted path, handed to a real service and rolled out, is tests/integration/retraining/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabserve.model_store import ORIGIN_LABEL, RETRAINED, StoredModel, get_model
from tabserve.predictions.store import make_engine
from tabserve.retraining.audit import REJECTED, recent_runs
from tests.census import CENSUS_MODEL, census_drifted, census_like, log_labelled
from tests.servers import run_tabserve

NO_SERVICE = "http://127.0.0.1:9"  # nothing listens: a loop that reaches its hand-off fails there


def configure(folder: Path, model: StoredModel, **retrain: object) -> dict[str, str]:
    config = {
        "serving": {"model": model.tag},
        "monitoring": {
            "sqlite_path": str(folder / "log.db"),
            "reports_dir": str(folder / "reports"),
            "workspace": str(folder / "workspace"),
            "min_labels": 20,
        },
        "retrain": {"min_labels": 300, "cooldown_minutes": 0, "decision": {"resamples": 300}, **retrain},
    }
    path = folder / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"TABSERVE_CONFIG": str(path), "TABSERVE_URL": NO_SERVICE}


def test_too_few_labels_is_one_line_and_exit_2(census_model: StoredModel, tmp_path: Path) -> None:
    env = configure(tmp_path, census_model)
    log_labelled(census_model, f"sqlite:///{tmp_path / 'log.db'}", census_like(120, seed=1))
    done = run_tabserve("retrain", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: 120 labelled rows of {CENSUS_MODEL} in the last 50,000 labelled rows; at least 300 are "
        "needed (retrain.min_labels): send more /feedback or widen the window"
    )
    assert recent_runs(make_engine(f"sqlite:///{tmp_path / 'log.db'}")) == []  # not a loop: no record


def test_a_covariate_shift_is_rejected_and_nothing_is_served(
    census_model: StoredModel, tmp_path: Path
) -> None:
    """Older people, the same relation: the champion already knows it; the challenger, trained on
    the window alone, is no better (NOTES: the census covariate shift). Then the gates."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    env = configure(tmp_path, census_model)
    log_labelled(census_model, url, census_like(1000, seed=51, x0_mean=1.0))
    done = run_tabserve("retrain", "--trigger", "unit test", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("REJECT: "), done.stdout
    assert "McNemar exact (one-sided)" in done.stdout
    (run,) = recent_runs(make_engine(url))
    assert run.status == REJECTED and run.trigger == "unit test" and not run.in_flight
    assert run.record["data"]["holdout_rows"] == 300 and run.record["data"]["train_logged_rows"] == 700
    assert run.record["evaluation"]["verdict"] == "REJECT" and "rollout" not in run.record
    assert set(run.record["phases"]) == {"gate", "data", "train", "evaluate", "save"}
    challenger = get_model(str(run.challenger))
    assert challenger.labels == {"stage": "rejected", ORIGIN_LABEL: RETRAINED}
    assert challenger.metadata["lineage"]["parent"] == census_model.tag
    assert challenger.metadata["lineage"]["evaluation_id"] == run.evaluation_id
    assert get_model(f"{CENSUS_MODEL}:latest").tag == census_model.tag  # never `latest`

    again = run_tabserve("retrain", env=env)
    assert again.returncode == 2 and "no new labels since the last loop" in again.stderr, again.stderr

    cooling = configure(tmp_path, census_model, cooldown_minutes=60)
    log_labelled(census_model, url, census_like(50, seed=52))
    refused = run_tabserve("retrain", env=cooling)
    assert refused.returncode == 2 and "cooldown" in refused.stderr, refused.stderr

    shown = run_tabserve("retrain", "--show", run.evaluation_id, env=env)
    assert shown.returncode == 0 and f'"challenger": "{run.challenger}"' in shown.stdout


@pytest.mark.parametrize("flag", [True, False])
def test_a_monitor_alarm_starts_the_loop(census_model: StoredModel, tmp_path: Path, flag: bool) -> None:
    """`monitor --retrain` (or retrain.trigger: alarm): the alarm's loop, recorded with its trigger.
    The concept drift is accepted; with no service to hand it to, the loop fails at the hand-off
    and says so, and the monitor still exits 1 for the alarm."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    env = configure(tmp_path, census_model, **({} if flag else {"trigger": "alarm"}))
    log_labelled(census_model, url, census_drifted(1000, seed=61))
    done = run_tabserve("monitor", "--quiet", *(["--retrain"] if flag else []), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"retraining: monitor alarm on {census_model.tag}" in done.stdout
    assert "ACCEPT: the challenger is better on accuracy" in done.stdout  # shown before the hand-off
    assert f"retraining stopped: cannot reach {NO_SERVICE}" in done.stdout
    (run,) = recent_runs(make_engine(url))
    assert run.trigger == f"monitor alarm on {census_model.tag} (variant default)"
    assert run.record["evaluation"]["verdict"] == "ACCEPT" and "cannot reach" in run.record["error"]
