"""Our own id for every `/score_file` call, and the link from BentoML's task id to it.

BentoML documents no way for a task to read the id it gave the client: 1.4.40 sets an
undocumented `request.state.task_id` (issue 13). So this middleware gives each upload an id of
ours (128 random bits) in a request header, which the endpoint reads from `ctx.request` (a
client's own header of that name is replaced, never trusted). A synchronous call keeps that id.
`/score_file/submit` answers with BentoML's id (its documented task API: status, get); the
middleware reads it from that answer and links ours to it before the answer goes out. BentoML
starts the task only after the answer is sent, so the task finds the link and keeps its
progress and result under the id the client was given.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from tabserve.serving.file_tasks import ProgressStore, is_task_id, new_task_id

TASK_ID_HEADER = "x-tabserve-task-id"
_HEADER = TASK_ID_HEADER.encode()
Message = MutableMapping[str, Any]


def task_id_of(headers: Any, progress: ProgressStore) -> str:
    """The id the client was given for this upload (a new one where the middleware did not run)."""
    ours = headers.get(TASK_ID_HEADER)
    return progress.take_link(ours) if is_task_id(ours) else new_task_id()


def submitted_id(body: bytes) -> str | None:
    """Pure: the task id in BentoML's `/submit` answer, or None (an error answer has none)."""
    try:
        found = json.loads(body).get("task_id")
    except (ValueError, AttributeError):
        return None
    return found if is_task_id(found) else None


class TaskIds:
    """ASGI middleware for the upload endpoint (`path`) and its `/submit` route."""

    def __init__(self, app: Any, path: str, task_dir: Path) -> None:
        self.app = app
        self.path, self.submit_path = path, f"{path}/submit"
        self.progress = ProgressStore(task_dir)  # built in the worker, with the app

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in (self.path, self.submit_path):
            await self.app(scope, receive, send)
            return
        ours = new_task_id()
        headers = [(key, value) for key, value in scope["headers"] if key.lower() != _HEADER]
        scope = {**scope, "headers": [*headers, (_HEADER, ours.encode())]}
        if scope["path"] == self.path:
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []

        async def linking_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    given = submitted_id(b"".join(parts))
                    if given is not None:
                        self.progress.link(ours, given)  # before the client can ask for it
            await send(message)

        await self.app(scope, receive, linking_send)
