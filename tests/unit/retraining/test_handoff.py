"""What `--wait` prints while it follows the rollout."""

from __future__ import annotations

from tabserve.retraining.handoff import stage_text


def test_each_stage_reads_as_deploy_status_says_it() -> None:
    assert stage_text({}) == "not started yet"
    assert stage_text({"stage": "shadow", "steps": [50, 100], "step": 0}).startswith("shadow stage")
    assert (
        stage_text({"stage": "canary", "steps": [5, 25.5, 100], "step": 1}) == "step 2/3 (25.5% of traffic)"
    )
    assert stage_text({"stage": "canary", "steps": [50, 100], "step": 7}) == "step 2/2 (100% of traffic)"
