"""ASGI middleware that refuses what the service should never start on, before BentoML sees it.

- more concurrent requests than `serving.max_concurrency` (per worker): 429 with `Retry-After`;
  BentoML's own `traffic.max_concurrency` answers 429 without it, so clients cannot back off well;
- a `multipart/*` body without a boundary: 400 (BentoML raised `KeyError: b'boundary'`, a 500);
- a `multipart/form-data` body that does not parse (a part without headers): 400, not the 500 of
  BentoML's wrapper around Starlette's own 400;
- a JSON endpoint sent another content type: 415 (BentoML parsed it as JSON whatever it said);
- a body over its limit: 413, chunked or not. The body is read here, up to the limit, and only
  then handed on: raised inside BentoML's endpoint wrapper, the limit became a 500. Uploads have
  their own limit (`serving.max_upload_bytes`) and are spooled to disk, not held in memory;
- more than `serving.max_large_requests` bodies over 1 MiB at once: the others wait their turn.
  Measured (`make bench-soak`): 12 concurrent 7 MiB batches took the worker from 295 MB to
  917 MB and it kept 151 MB; a body's parsed records cost ~10x its bytes. After a large request
  the freed heap is handed back to the OS (`malloc_trim`), which Python's allocator never does;
- an error answer of the app: bounded (`tabserve.serving.http_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any

from tabserve.serving.http_bodies import (
    SPOOL_IN_MEMORY_BYTES,
    RefusedError,
    bounded_errors,
    multipart_problem,
    read_body,
    release_free_memory,
    replay,
    send_json,
)

logger = logging.getLogger(__name__)

Scope = dict[str, Any]

JSON_TYPES = frozenset({"application/json"})
UPLOAD_TYPES = frozenset({"multipart/form-data"})
LARGE_BODY_BYTES = 1 << 20  # bodies over this take a turn at the large-request gate
REFUSAL_LOG_INTERVAL_S = 10.0  # 429s are logged as one summary line per interval, not one per request
# Health, metrics and the OpenAPI document are never refused for load.
UNLIMITED_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int
    max_upload_bytes: int
    max_concurrency: int
    max_large_requests: int = 2
    retry_after_s: int = 1
    json_paths: frozenset[str] = frozenset()  # POST endpoints that take application/json only
    upload_paths: frozenset[str] = frozenset()  # POST endpoints that take multipart/form-data only


def media_type(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, dict[str, str]]:
    """Pure: (lower-case media type or None, its parameters) from the raw request headers."""
    raw = dict(headers).get(b"content-type")
    if raw is None:
        return None, {}
    kind, *params = raw.decode("latin-1").split(";")
    pairs = (param.split("=", 1) for param in params if "=" in param)
    return kind.strip().lower(), {key.strip().lower(): value.strip().strip('"') for key, value in pairs}


def check_content_type(
    limits: HttpLimits, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """Raise a RefusedError (400/415) for a content type this endpoint cannot take."""
    kind, params = media_type(headers)
    if kind is not None and kind.startswith("multipart/") and not params.get("boundary"):
        raise RefusedError(400, f"{kind} needs a boundary parameter (Content-Type: {kind}; boundary=...)")
    if method != "POST":
        return
    if path in limits.json_paths and kind is not None and kind not in JSON_TYPES:
        raise RefusedError(415, f"POST {path} takes application/json, not {kind[:100]}")
    if path in limits.upload_paths and kind not in UPLOAD_TYPES:
        raise RefusedError(
            415, f"POST {path} takes multipart/form-data (a file upload), not {str(kind)[:100]}"
        )


class RequestGuard:
    def __init__(self, app: Any, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0  # one event loop per worker: no lock needed
        self.large_gate = asyncio.Semaphore(limits.max_large_requests)
        self.large_in_flight = 0
        self.refused = 0
        self.last_refusal_log = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        try:
            if path not in UNLIMITED_PATHS and self.in_flight >= self.limits.max_concurrency:
                self._count_refusal()
                raise RefusedError(
                    429,
                    f"more than {self.limits.max_concurrency} concurrent requests; retry shortly",
                    {"retry-after": str(self.limits.retry_after_s)},
                )
            check_content_type(self.limits, method, path, scope.get("headers") or [])
        except RefusedError as refusal:
            await self._refuse(send, refusal, path, method)
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send, path, method)
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Any, send: Any, path: str, method: str) -> None:
        upload = path in self.limits.upload_paths
        limit = self.limits.max_upload_bytes if upload else self.limits.max_body_bytes
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 (closed below)
        declared = _declared_length(scope)
        try:
            if declared is not None and LARGE_BODY_BYTES < declared <= limit:
                async with self.large_gate:  # wait before reading: the body is not held meanwhile
                    await self._read_and_call(scope, receive, send, spool, limit, declared, large=True)
            else:
                await self._read_and_call(scope, receive, send, spool, limit, declared, large=False)
        finally:
            spool.close()

    async def _read_and_call(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        spool: IO[bytes],
        limit: int,
        declared: int | None,
        large: bool,
    ) -> None:
        try:
            received = await read_body(receive, spool, limit, declared)
        except RefusedError as refusal:
            await self._refuse(send, refusal, scope["path"], scope["method"])
            return
        if received is None:  # the client went away
            return
        spool.seek(0)
        kind, params = media_type(scope.get("headers") or [])
        if kind == "multipart/form-data":
            problem = await asyncio.to_thread(multipart_problem, spool, params["boundary"])
            if problem is not None:
                await self._refuse(send, RefusedError(400, problem), scope["path"], scope["method"])
                return
        if not large and received > LARGE_BODY_BYTES:  # chunked: its size is known only now
            async with self.large_gate:
                await self._call_large(scope, replay(spool, receive), send)
        elif large:
            await self._call_large(scope, replay(spool, receive), send)
        else:
            await self.app(scope, replay(spool, receive), bounded_errors(send))

    async def _call_large(self, scope: Scope, receive: Any, send: Any) -> None:
        self.large_in_flight += 1
        try:
            await self.app(scope, receive, bounded_errors(send))
        finally:
            self.large_in_flight -= 1
            if self.large_in_flight == 0:
                await asyncio.to_thread(release_free_memory)

    def _count_refusal(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.last_refusal_log >= REFUSAL_LOG_INTERVAL_S:
            logger.warning(
                "429: %d request(s) refused over max_concurrency=%d",
                self.refused,
                self.limits.max_concurrency,
            )
            self.refused, self.last_refusal_log = 0, now

    async def _refuse(self, send: Any, refusal: RefusedError, path: str, method: str) -> None:
        if refusal.status != 429:
            logger.warning("%d on %s [%s]: %s", refusal.status, path, method, refusal)
        await send_json(send, refusal.status, {"error": str(refusal)}, refusal.headers)


def _declared_length(scope: Scope) -> int | None:
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None
