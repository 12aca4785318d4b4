"""The admin API from Python: what `tabserve deploy` calls (same operations, same rules)."""

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

    def change(self, action: str, reason: str, **fields: Any) -> dict[str, Any]:
        """One of: switch (to), weights (weights), canary (percent), policy (policy), rollout,
        promote, rollback, reset."""
        return self._call("POST", action, {"reason": reason, **fields})
