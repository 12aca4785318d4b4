"""ASGI plumbing for `tabserve.serving.http_limits`: read a body up to a limit, replay it, bound errors.

Kept apart from the policy (what is refused and why) so each reads in one sitting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from tabserve.serving.http_errors import bound_error_body

Message = dict[str, Any]

SPOOL_IN_MEMORY_BYTES = 1 << 20  # an upload's first MiB stays in memory, the rest goes to disk
REPLAY_BLOCK_BYTES = 1 << 20
MULTIPART_BLOCK_BYTES = 1 << 20


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


class _PartCheck:
    """Parser callbacks: counts parts and notes one without a Content-Disposition header."""

    def __init__(self) -> None:
        self.parts = 0
        self.unnamed = 0
        self.field = b""
        self.disposition = False

    def on_part_begin(self) -> None:
        self.parts += 1
        self.disposition = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_end(self) -> None:
        self.disposition = self.disposition or self.field.lower() == b"content-disposition"
        self.field = b""

    def on_headers_finished(self) -> None:
        self.unnamed += not self.disposition


def multipart_problem(spool: IO[bytes], boundary: str) -> str | None:
    """Why a spooled multipart/form-data body cannot be parsed, or None.

    Starlette raises a 400 for malformed multipart data, but BentoML's endpoint wrapper turns it
    into a 500 (found by schemathesis: a part without headers). The body is parsed here once, in
    blocks, by the parser Starlette uses; every part must name itself (Content-Disposition).
    """
    check = _PartCheck()
    callbacks: Any = {
        "on_part_begin": check.on_part_begin,
        "on_header_field": check.on_header_field,
        "on_header_end": check.on_header_end,
        "on_headers_finished": check.on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        while block := spool.read(MULTIPART_BLOCK_BYTES):
            parser.write(block)
        parser.finalize()
    except MultipartParseError as error:
        return f"invalid multipart data: {str(error)[:200]}"
    finally:
        spool.seek(0)
    if not check.parts:
        return "invalid multipart data: no part"
    if check.unnamed:
        return "invalid multipart data: a part without a Content-Disposition header"
    return None
