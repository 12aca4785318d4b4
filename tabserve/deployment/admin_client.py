"""The admin API from Python: what `tabserve deploy` calls (same operations, same rules).

`add_candidate` hands a model to the running service (`POST /admin/candidate`); `state` reads
where it is, and `rollout_outcome` says from that whether its rollout has ended.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

import httpx

from tabserve.deployment.admin_api import ADMIN_TOKEN_ENV
from tabserve.errors import TabserveError

URL_ENV = "TABSERVE_URL"
DEFAULT_URL = "http://127.0.0.1:3000"
TIMEOUT_S = 30


class AdminError(TabserveError):
    """The admin API refused the call, or could not be reached."""


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class AdminClient:
    def __init__(self, url: str | None = None, token: str | None = None, actor: str | None = None) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get(ADMIN_TOKEN_ENV, "")
        self.actor = actor or default_actor()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"X-Actor": self.actor}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method, f"{self.url}/admin/{path}", json=body, headers=headers, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as error:
            raise AdminError(f"cannot reach {self.url}: {error}") from None
        payload: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            detail = "; ".join(
                f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in payload.get("detail", [])
            )
            message = payload.get("error", response.text)
            raise AdminError(f"{response.status_code}: {message}" + (f" ({detail})" if detail else ""))
        return payload

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def events(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self._call("GET", f"events?limit={limit}")["events"])

    def add_candidate(
        self,
        model: str,
        reason: str,
        *,
        name: str | None = None,
        evaluation: str | None = None,
        rollout: bool = True,
    ) -> dict[str, Any]:
        """Add `model` (NAME:VERSION) as the candidate: every worker and replica loads it; with
        `rollout`, shadow stage then canary steps. Returns the state, as `state()` does.

        AdminError: 400 a bad field, 404 a model the service's store lacks, 409 incompatible
        (other features or classes), a name taken, or a rollout already running.
        """
        body: dict[str, Any] = {"model": model, "reason": reason, "rollout": rollout}
        body |= {key: value for key, value in (("name", name), ("evaluation", evaluation)) if value}
        return self._call("POST", "candidate", body)

    def change(self, action: str, reason: str, **fields: Any) -> dict[str, Any]:
        """One of: switch (to), weights (weights), canary (percent), policy (policy), rollout,
        promote, rollback, reset."""
        return self._call("POST", action, {"reason": reason, **fields})


def rollout_outcome(payload: dict[str, Any], candidate: str | None = None) -> str | None:
    """From a `state()` answer: "promoted" or "rolled_back" once the rollout of `candidate` (a
    variant name; default: any) has ended, else None (still running, or not its rollout)."""
    state = payload["state"]
    rollout = state.get("rollout")
    if rollout is None or rollout["state"] == "running":
        return None
    if candidate is not None and candidate not in (
        state["policy"].get("candidate"),
        state["policy"].get("champion"),
    ):
        return None
    return str(rollout["state"])
