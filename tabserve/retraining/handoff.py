"""Hand an accepted challenger to the running service, and follow its rollout.

Through the admin API, as `tabserve deploy` does (`--url` or TABSERVE_URL, TABSERVE_ADMIN_TOKEN):
the service adds the model as a candidate variant on every worker and replica, shadows it, then
runs the canary steps with its guards and promotes or rolls back on its own. The loop only
watches: the decision to serve is the service's guards', on live traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tabserve.deployment.admin_client import AdminClient, rollout_outcome
from tabserve.errors import TabserveError

POLL_S = 2.0


class RolloutTimeoutError(TabserveError):
    """--wait gave up before the rollout ended (it goes on in the service)."""


@dataclass(frozen=True)
class RolloutOutcome:
    outcome: str  # promoted | rolled_back
    reason: str


def stage_text(rollout: dict[str, Any]) -> str:
    """Pure: where a running rollout is, as `tabserve deploy status` says it."""
    if not rollout:
        return "not started yet"
    if rollout.get("stage") == "shadow":
        return "shadow stage (0% of traffic: scores copies)"
    steps = [float(step) for step in rollout.get("steps", [])]
    if not steps:
        return "running"
    step = min(int(rollout.get("step", 0)), len(steps) - 1)
    return f"step {step + 1}/{len(steps)} ({steps[step]:g}% of traffic)"


class Handoff:
    def __init__(self, client: AdminClient) -> None:
        self.client = client

    def start(self, tag: str, evaluation_id: str, reason: str) -> str:
        """Add `tag` as the candidate and start its rollout (shadow first); returns the variant name."""
        answer = self.client.add_candidate(tag, reason=reason, evaluation=evaluation_id)
        return str(answer["state"]["policy"]["candidate"])

    def wait(self, variant: str, timeout: timedelta, report: Callable[[str], None]) -> RolloutOutcome:
        deadline = time.monotonic() + timeout.total_seconds()
        last_stage: str | None = None
        while time.monotonic() < deadline:
            state = self.client.state()
            ended = rollout_outcome(state, variant)
            if ended is not None:
                return RolloutOutcome(ended, str(state["state"]["rollout"].get("reason", "")))
            stage = stage_text(state["state"].get("rollout") or {})
            if stage != last_stage:
                last_stage = stage
                report(f"rollout of {variant}: {stage}")
            time.sleep(POLL_S)
        raise RolloutTimeoutError(
            f"the rollout of {variant} had not ended after {timeout}; it goes on in the service: "
            "`tabserve deploy status` follows it"
        )
