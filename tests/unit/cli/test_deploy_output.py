"""What `tabserve deploy` prints, on payloads built the way the admin API builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tabserve.cli.deploy import event_rows, left_out_text, report_window, show_state
from tabserve.cli.main import build_parser
from tabserve.deployment.policy import DeploymentState, GuardResult, advance, rollback, start_rollout
from tabserve.deployment.rollout import Evidence, operational_guards, statistical_guards
from tabserve.deployment.routing import traffic_shares
from tabserve.deployment.store import VariantSummary
from tabserve.deployment.variant_stats import bucket_of
from tabserve.settings import Policy, RolloutSettings

NAMES = ["champion", "candidate"]
TAGS = {"champion": "breast_cancer:u6zsxqbxbsl4wgpz", "candidate": "candidate:ahv2hdqe4kxw4aav"}
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = DeploymentState(policy=Policy(active="champion", champion="champion", candidate="candidate"))
SETTINGS = RolloutSettings(steps=[20, 100], min_requests=40, min_seconds=3, min_labels=50)


def payload(state: DeploymentState, version: int, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """What GET /admin/state answers (Deployment.describe)."""
    return {
        "version": version,
        "state": state.to_json(),
        "variants": TAGS,
        "traffic": traffic_shares(state.policy, NAMES),
        "shadow_dropped": 0,
        "worker": 4242,
        "progress": progress,
    }


def outcomes(rows: int, accuracy: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prediction = rng.choice(["0", "1"], rows)
    right = rng.random(rows) < accuracy
    return pd.DataFrame({"prediction": prediction, "label": np.where(right, prediction, "x")})


def passed_guards() -> dict[str, GuardResult]:
    """The guards of a good candidate, computed by the rollout's own functions."""
    evidence = Evidence(
        candidate=VariantSummary(300, 0, {bucket_of(4.0): 300}),
        candidate_outcomes=outcomes(300, 0.95, seed=1),
        champion_outcomes=outcomes(1200, 0.95, seed=2),
        classifier=True,
    )
    return operational_guards(evidence, SETTINGS) | statistical_guards(evidence, SETTINGS)


def promoted() -> DeploymentState:
    running = start_rollout(START, NAMES, SETTINGS.steps, NOW)
    second = advance(running, NAMES, NOW + timedelta(seconds=5), passed_guards(), "step 1 (20%) passed")
    reason = "step 2 (100%) passed every guard; every step passed: promoted"
    return advance(second, NAMES, NOW + timedelta(seconds=10), passed_guards(), reason)


def test_after_a_promotion_names_and_roles_are_separate_columns_under_a_header() -> None:
    lines = show_state(payload(promoted(), 4)).splitlines()
    assert lines[0] == "version 4, strategy single"
    header, old, new = lines[1:4]
    assert header.split() == ["VARIANT", "MODEL", "ROLE", "TRAFFIC"]
    # The variant named "champion" is now the candidate, and the one to roll back to.
    assert old.split("  ")[0] == "champion" and "candidate, rollback target" in old and old.endswith(" 0.0%")
    assert new.startswith("candidate ") and "champion, active" in new and new.endswith("100.0%")
    assert {line.index(TAGS["champion"][:5]) for line in (old,)} == {header.index("MODEL")}
    assert old.index("candidate, rollback") == new.index("champion, active") == header.index("ROLE")
    assert header.index("TRAFFIC") + len("TRAFFIC") == len(old) == len(new)


def test_a_finished_rollout_reads_as_the_past_with_its_guards_in_words() -> None:
    text = show_state(payload(promoted(), 4))
    assert "last rollout: promoted at step 2/2 (100% of traffic): step 2 (100%) passed every guard" in text
    quality = next(line for line in text.splitlines() if line.strip().startswith("quality"))
    assert "passed" in quality and "no evidence that its accuracy is more than 0.05 lower (p " in quality
    assert "that it is worse" not in text and "p = 1 " not in text


def test_after_a_rollback_status_says_rolled_back_not_promoted() -> None:
    back = rollback(promoted(), NAMES, "regression on Monday's data")
    lines = show_state(payload(back, 5)).splitlines()
    assert any(line.startswith("champion ") and line.endswith("100.0%") for line in lines)
    rollout_line = next(line for line in lines if "rollout" in line)
    assert rollout_line.startswith("last rollout: rolled back at step 2/2")
    assert rollout_line.endswith("rolled back after its promotion: regression on Monday's data")
    assert "promoted at" not in "\n".join(lines)


def test_a_running_step_shows_its_progress_against_what_it_needs() -> None:
    running = start_rollout(START, NAMES, SETTINGS.steps, NOW)
    progress = {
        "step": 1,
        "steps": 2,
        "percent": 20.0,
        "requests": 35,
        "min_requests": 40,
        "seconds": 2.4,
        "min_seconds": 3.0,
    }
    text = show_state(payload(running, 2, progress))
    assert "rollout: running, step 1/2 (20% of traffic): 35/40 candidate requests, 2/3 s" in text
    assert text.splitlines()[3].split() == ["candidate", TAGS["candidate"], "candidate", "20.0%"]
    unjudged = show_state(payload(running, 2))
    assert "rollout: running, step 1/2 (20% of traffic): not judged yet" in unjudged


def test_unmeasured_and_fired_guards_say_so() -> None:
    guards = {
        "error_rate": GuardResult(
            value=0.5, limit=0.01, ok=False, detail="20/40 requests failed (max 1.00%)"
        ),
        "quality": GuardResult(value=None, limit=0.05, ok=True, detail="not enough labels (12/3)"),
    }
    running = start_rollout(START, NAMES, SETTINGS.steps, NOW)
    back = rollback(running, NAMES, "guard error_rate fired at step 1 (20%)", guards)
    rows = show_state(payload(back, 3)).splitlines()[-3:]
    assert rows[0].split() == ["GUARD", "RESULT", "DETAIL"]
    assert rows[1].split()[:2] == ["error_rate", "FIRED"] and rows[2].split()[:3] == [
        "quality",
        "not",
        "measured",
    ]


def test_the_audit_trail_has_a_header_and_columns() -> None:
    events = [
        {
            "ts": "2026-11-20T12:00:10+00:00",
            "version": 3,
            "action": "rollback",
            "actor": "alice@ops",
            "reason": "bad",
        },
        {
            "ts": "2026-11-20T12:00:00+00:00",
            "version": 2,
            "action": "switch",
            "actor": "rollout",
            "reason": "x",
        },
    ]
    header, first, second = event_rows(events)
    assert header.split() == ["TIME", "VERSION", "ACTION", "ACTOR", "REASON"]
    assert first.index("rollback") == second.index("switch") == header.index("ACTION")


def test_the_report_window_starts_at_the_policy_version_unless_since_is_given() -> None:
    parser = build_parser()
    default = parser.parse_args(["deploy", "report"])
    assert report_window(default, (3, NOW)) == (
        NOW,
        "since policy version 3 was applied; --since to look further back",
    )
    since, reason = report_window(default, None)
    assert (
        reason.startswith("last 24 h") and abs(since - (datetime.now(UTC) - timedelta(hours=24))).seconds < 60
    )
    explicit = parser.parse_args(["deploy", "report", "--since", "2026-11-01T08:00"])
    assert report_window(explicit, (3, NOW)) == (
        datetime(2026, 11, 1, 8, tzinfo=UTC),
        "--since",
    )  # naive: UTC


def test_rows_of_earlier_models_are_named_as_left_out() -> None:
    logged = {"champion": {"m:new": 50, "m:old": 100}, "candidate": {"c:v1": 40}}
    assert left_out_text(logged, {"champion": "m:new", "candidate": "c:v1"}) == (
        "; left out, earlier models: champion's m:old (100 rows)"
    )
    assert left_out_text(logged, {"champion": "m:old", "candidate": None}) == (
        "; left out, earlier models: champion's m:new (50 rows)"
    )
    assert left_out_text({"champion": {"m:new": 5}}, {"champion": "m:new"}) == ""


def test_an_added_candidate_in_its_shadow_stage_shows_its_model_evaluation_and_progress() -> None:
    from tabserve.deployment.candidates import add_candidate
    from tabserve.deployment.policy import AddedVariant

    tag = "breast_cancer:newversion123"
    shadowing = add_candidate(START, NAMES, "v5", AddedVariant(model=tag, evaluation="ev-42"), NOW, [20, 100])
    body = payload(
        shadowing, 7, {"step": 1, "requests": 12, "min_requests": 40, "seconds": 1.2, "min_seconds": 3}
    )
    body["variants"] = {**TAGS, "v5": tag}
    body["traffic"] = traffic_shares(shadowing.policy, shadowing.variant_names(NAMES))
    lines = show_state(body).splitlines()
    assert lines[0] == "version 7, strategy shadow"
    assert lines[1].split() == ["VARIANT", "MODEL", "ROLE", "TRAFFIC", "EVALUATION"]
    assert lines[4].split() == ["v5", tag, "candidate", "0.0%", "ev-42"]
    assert lines[2].split()[-1] == "-"  # a configured variant: no evaluation
    assert lines[5] == (
        "rollout: running, shadow stage before step 1/2 (0% of traffic): 12/40 shadow-scored requests, 1/3 s"
    )
    rolled_back = rollback(shadowing, NAMES, "guard error_rate fired at the shadow stage (evaluation ev-42)")
    body["state"] = rolled_back.to_json()
    assert "last rollout: rolled back at shadow stage before step 1/2" in show_state(body)


def test_deploy_candidate_takes_a_tag_a_reason_and_its_options() -> None:
    parser = build_parser()
    plain = parser.parse_args(["deploy", "candidate", "churn:v5", "--reason", "retrained"])
    assert (plain.model, plain.reason, plain.name, plain.evaluation, plain.rollout) == (
        "churn:v5",
        "retrained",
        None,
        None,
        True,
    )
    full = parser.parse_args(
        [
            "deploy",
            "candidate",
            "churn:v5",
            "--reason",
            "r",
            "--name",
            "v5",
            "--evaluation",
            "ev",
            "--no-rollout",
        ]
    )
    assert (full.name, full.evaluation, full.rollout) == ("v5", "ev", False)


def test_rollout_outcome_says_when_the_candidates_rollout_has_ended() -> None:
    from tabserve.deployment.admin_client import rollout_outcome
    from tabserve.deployment.candidates import add_candidate
    from tabserve.deployment.policy import AddedVariant, promote

    running = add_candidate(START, NAMES, "v5", AddedVariant(model="c:v5"), NOW, [100])
    assert rollout_outcome(payload(running, 2)) is None
    assert rollout_outcome(payload(promote(running, NAMES), 3), "v5") == "promoted"
    assert rollout_outcome(payload(rollback(running, NAMES, "guard"), 3), "v5") == "rolled_back"
    assert rollout_outcome(payload(rollback(running, NAMES, "guard"), 3), "v6") is None  # not its rollout
    assert rollout_outcome(payload(START, 1)) is None  # no rollout at all
