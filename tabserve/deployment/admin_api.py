"""The admin API, mounted at /admin: read the deployment state, change it, read the audit trail.

Every request needs `Authorization: Bearer $TABSERVE_ADMIN_TOKEN` (401 without, 403 with a wrong
one; with the variable unset the API refuses everything). Every change needs a `reason`; the
actor is the `X-Actor` header (default `admin-api`). Changes are stored before they are
answered, so every worker and replica follows within `deployment.refresh_ms`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tabserve.deployment.policy import (
    DeploymentState,
    PolicyError,
    promote,
    replace_policy,
    rollback,
    set_canary,
    set_weights,
    start_rollout,
    switch,
)
from tabserve.deployment.store import Change
from tabserve.settings import VARIANT_NAME, Policy

ADMIN_TOKEN_ENV = "TABSERVE_ADMIN_TOKEN"
ACTOR_HEADER = "x-actor"
DEFAULT_ACTOR = "admin-api"
MAX_EVENTS = 1000
CANDIDATE = "candidate"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="Why: kept in the audit trail.")


class SwitchBody(_Body):
    to: str | None = None


class WeightsBody(_Body):
    weights: dict[str, float]


class CanaryBody(_Body):
    percent: float


class PolicyBody(_Body):
    policy: Policy


MODEL_TAG = r"^[A-Za-z0-9][A-Za-z0-9_.-]*:[A-Za-z0-9][A-Za-z0-9_.-]*$"


class CandidateBody(_Body):
    """`POST /admin/candidate`: a model of the store added as the candidate of the current primary."""

    model: str = Field(pattern=MODEL_TAG, max_length=200, description="NAME:VERSION in the model store.")
    name: str | None = Field(
        default=None, pattern=VARIANT_NAME.pattern, description="Variant name (default: the version)."
    )
    evaluation: str | None = Field(
        default=None, min_length=1, max_length=200, description="The evaluation that accepted it."
    )
    rollout: bool = Field(default=True, description="Start a rollout, shadow stage first.")


class DeploymentControl(Protocol):
    """What the admin API needs of a deployment (tabserve.deployment.deployment.Deployment)."""

    @property
    def names(self) -> list[str]: ...  # the variants, in configured order

    @property
    def configured(self) -> DeploymentState: ...  # what `reset` goes back to

    @property
    def rollout_steps(self) -> list[float]: ...

    @property
    def shadow_first(self) -> bool: ...  # a plain rollout starts with a shadow stage

    def describe(self) -> dict[str, Any]: ...  # version, state, variants, traffic, shadow_dropped, worker

    def apply(
        self, operation: Callable[[DeploymentState], DeploymentState | None], change: Change
    ) -> tuple[int, DeploymentState]: ...  # stored by compare and swap, with its audit event

    def events(self, limit: int) -> list[dict[str, Any]]: ...  # the audit trail, newest first

    def add_candidate(
        self, model: str, name: str | None, evaluation: str | None, rollout: bool, change: Change
    ) -> tuple[int, DeploymentState]: ...  # 404 unknown model, 409 incompatible or a rollout running


Operation = Callable[[DeploymentControl, Any], Callable[[DeploymentState], DeploymentState]]

OPERATIONS: dict[str, tuple[type[_Body], Operation]] = {
    "switch": (SwitchBody, lambda d, body: lambda s: switch(s, d.names, body.to)),
    "weights": (WeightsBody, lambda d, body: lambda s: set_weights(s, d.names, body.weights)),
    "canary": (CanaryBody, lambda d, body: lambda s: set_canary(s, d.names, body.percent)),
    "policy": (PolicyBody, lambda d, body: lambda s: replace_policy(s, d.names, body.policy)),
    "rollout": (
        _Body,
        lambda d, body: (
            lambda s: start_rollout(s, d.names, d.rollout_steps, datetime.now(UTC), d.shadow_first)
        ),
    ),
    "promote": (_Body, lambda d, body: lambda s: promote(s, d.names, body.reason)),
    "rollback": (_Body, lambda d, body: lambda s: rollback(s, d.names, body.reason)),
    "reset": (_Body, lambda d, body: lambda s: d.configured),
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _parsed(request: Request, body_type: type[_Body]) -> _Body | JSONResponse:
    """The validated body, or a 400 naming each wrong field."""
    try:
        return body_type.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        detail = [
            {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        return _error(400, "invalid request body", detail=detail)


def _change_of(request: Request, body: _Body) -> Change:
    return Change(
        request.headers.get(ACTOR_HEADER, DEFAULT_ACTOR)[:200], request.path_params["action"], body.reason
    )


class AdminApi:
    """Built at import (mounted on the service); `find_deployment` returns the worker's, once started."""

    def __init__(self, token: str | None, find_deployment: Callable[[], DeploymentControl | None]) -> None:
        self.token = token or None
        self.find_deployment = find_deployment

    def _denied(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header:
            return JSONResponse(
                {"error": "authentication required: Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self.token is None:
            return _error(403, f"the admin API is off: set {ADMIN_TOKEN_ENV} for the service")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return _error(403, "wrong admin token")
        return None

    def _guarded(self, handler: Callable[[Request, DeploymentControl], Awaitable[JSONResponse]]) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            denied = self._denied(request)
            if denied is not None:
                return denied
            deployment = self.find_deployment()
            if deployment is None:
                return _error(503, "the service is still starting")
            try:
                return await handler(request, deployment)
            except SQLAlchemyError as error:  # the state lives there: nothing was changed
                return _error(503, f"the deployment database is unreachable: {type(error).__name__}; retry")

        return endpoint

    async def _state(self, _: Request, deployment: DeploymentControl) -> JSONResponse:
        return JSONResponse(deployment.describe())

    async def _events(self, request: Request, deployment: DeploymentControl) -> JSONResponse:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return _error(400, "limit: must be an integer")
        if not 1 <= limit <= MAX_EVENTS:
            return _error(400, f"limit: must be within [1, {MAX_EVENTS}]")
        return JSONResponse({"events": await run_in_threadpool(deployment.events, limit)})

    async def _change(self, request: Request, deployment: DeploymentControl) -> JSONResponse:
        action = request.path_params["action"]
        if action == CANDIDATE:
            return await self._candidate(request, deployment)
        if action not in OPERATIONS:
            known = ", ".join([*OPERATIONS, CANDIDATE])
            return _error(404, f"no admin operation {action!r} (one of {known})")
        body_type, operation = OPERATIONS[action]
        body = await _parsed(request, body_type)
        if isinstance(body, JSONResponse):
            return body
        try:
            await run_in_threadpool(deployment.apply, operation(deployment, body), _change_of(request, body))
        except PolicyError as error:
            return _error(error.status, str(error))
        return JSONResponse(deployment.describe())

    async def _candidate(self, request: Request, deployment: DeploymentControl) -> JSONResponse:
        body = await _parsed(request, CandidateBody)
        if isinstance(body, JSONResponse):
            return body
        assert isinstance(body, CandidateBody)
        try:  # the model is looked up and loaded (off the event loop) before anything is stored
            await run_in_threadpool(
                deployment.add_candidate,
                body.model,
                body.name,
                body.evaluation,
                body.rollout,
                _change_of(request, body),
            )
        except PolicyError as error:
            return _error(error.status, str(error))
        return JSONResponse(deployment.describe())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/state", self._guarded(self._state), methods=["GET"]),
                Route("/events", self._guarded(self._events), methods=["GET"]),
                Route("/{action}", self._guarded(self._change), methods=["POST"]),
            ]
        )
