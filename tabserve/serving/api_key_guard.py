"""ASGI middleware: every request needs an API key with the right for its path, except open paths.

It wraps the whole service (BentoML's endpoints, their task routes and the mounted apps), so an
endpoint added later is covered without a line of its own; only `serving.open_paths` (health,
metrics, the OpenAPI document) and `/admin` (its own token) are open. No key: 401 with
`WWW-Authenticate: Bearer`; a key without the right: 403. The key's NAME is kept in a context
variable for the prediction log (`current_key_name`): the row says which client asked, never
with what secret.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tabserve.errors import ConfigurationError
from tabserve.serving.api_keys import API_KEYS_ENV, KeyRing, bearer_of, find_key, is_open, needed_rights
from tabserve.serving.http_bodies import send_json
from tabserve.settings import ServingSettings

logger = logging.getLogger(__name__)

_key_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("tabserve_api_key", default=None)
CHALLENGE = {"www-authenticate": "Bearer"}


def current_key_name() -> str | None:
    """The name of the API key of the request being served here (None: keys are off)."""
    return _key_name.get()


@dataclass(frozen=True)
class AccessControl:
    ring: KeyRing | None  # None: keys are off, every endpoint is open
    open_paths: tuple[str, ...]

    def protects(self, path: str) -> bool:
        return self.ring is not None and not is_open(path, self.open_paths)


def access_control(settings: ServingSettings, environ: Mapping[str, str] | None = None) -> AccessControl:
    """Keys from the environment and the file; ConfigurationError if they are required and absent."""
    environ = os.environ if environ is None else environ
    configured = bool(environ.get(API_KEYS_ENV)) or settings.api_keys_file is not None
    if not configured:
        if settings.api_keys_required:
            raise ConfigurationError(
                f"serving.api_keys_required is true but no key is configured: set {API_KEYS_ENV}="
                "name:sha256hex[,...] or serving.api_keys_file (docs/privacy.md)"
            )
        return AccessControl(None, tuple(settings.open_paths))
    return AccessControl(KeyRing(environ, settings.api_keys_file), tuple(settings.open_paths))


def warn_if_open(control: AccessControl) -> None:
    if control.ring is None:
        logger.warning(
            "API keys are OFF: anyone who reaches this port may score, read task results and send "
            "labels. Turn them on with %s=name:sha256hex (or serving.api_keys_file) and "
            "serving.api_keys_required: true (docs/privacy.md)",
            API_KEYS_ENV,
        )


class ApiKeyGuard:
    def __init__(self, app: Any, control: AccessControl) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.control.protects(path):
            await self.app(scope, receive, send)
            return
        assert self.control.ring is not None
        headers = dict(scope.get("headers") or [])
        presented = bearer_of(headers.get(b"authorization", b"").decode("latin-1"))
        if presented is None:
            await send_json(
                send, 401, {"error": f"{path} needs 'Authorization: Bearer <API key>'"}, CHALLENGE
            )
            return
        key = find_key(self.control.ring.keys(time.monotonic()), presented)
        if key is None:
            await send_json(send, 401, {"error": "unknown API key"}, CHALLENGE)
            return
        missing = needed_rights(path) - key.rights
        if missing:
            logger.warning("403 on %s: API key %r lacks %s", path, key.name, "+".join(sorted(missing)))
            error = f"API key {key.name!r} lacks the right {'+'.join(sorted(missing))} for {path}"
            await send_json(send, 403, {"error": error}, {})
            return
        token = _key_name.set(key.name)
        try:
            await self.app(scope, receive, send)
        finally:
            _key_name.reset(token)
