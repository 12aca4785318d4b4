"""ASGI plumbing for `tabserve.http_limits`: read a body up to a limit, replay it, bound errors.

Kept apart from the policy (what is refused and why) so each reads in one sitting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from typing import IO, Any

from tabserve.http_errors import bound_error_body

Message = dict[str, Any]

SPOOL_IN_MEMORY_BYTES = 1 << 20  # an upload's first MiB stays in memory, the rest goes to disk
REPLAY_BLOCK_BYTES = 1 << 20


class RefusedError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _load_malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to call
        return None


MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc only; elsewhere a no-op)."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


async def read_body(receive: Any, spool: IO[bytes], limit: int, declared: int | None) -> int | None:
    """Read the whole body into `spool`; RefusedError(413) past `limit`; None if the client left."""
    too_large = RefusedError(413, f"request body larger than the limit of {limit} bytes")
    if declared is not None and declared > limit:
        raise too_large
    received = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise too_large
        spool.write(chunk)
        if not message.get("more_body", False):
            return received


def replay(spool: IO[bytes], receive: Any) -> Any:
    """A `receive` that hands on the spooled body, then waits on the real one (for a disconnect)."""
    done = False

    async def replayed() -> Message:
        nonlocal done
        if done:
            return await receive()  # type: ignore[no-any-return]
        chunk = spool.read(REPLAY_BLOCK_BYTES)
        done = len(chunk) < REPLAY_BLOCK_BYTES
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replayed


def bounded_errors(send: Any) -> Any:
    """A `send` that holds an error answer (4xx/5xx) until it is complete, then sends it bounded."""
    held: Message | None = None
    parts: list[bytes] = []

    async def bounded_send(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held = message
            return
        if held is None or message["type"] != "http.response.body":
            await send(message)
            return
        parts.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = bound_error_body(b"".join(parts))
        headers = [(key, value) for key, value in held.get("headers", []) if key.lower() != b"content-length"]
        await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return bounded_send


async def send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    content = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *((key.encode(), value.encode()) for key, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})
