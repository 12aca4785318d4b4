"""Upload task ids: ours in a header a client cannot set, linked to the id a `/submit` answer gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tabserve.serving.file_tasks import ProgressStore, is_task_id
from tabserve.serving.task_ids import TASK_ID_HEADER, TaskIds, submitted_id, task_id_of

GIVEN = "b" * 32  # the id the framework's /submit answers with


def app_like_bentoml(task_dir: Path, seen: list[str]) -> TaskIds:
    """`/up` scores in the request; `/up/submit` answers an id, then runs the task (as BentoML does)."""
    progress = ProgressStore(task_dir)

    async def upload(request: Request) -> JSONResponse:
        return JSONResponse({"task_id": task_id_of(request.headers, progress)})

    async def submit(request: Request) -> JSONResponse:
        def run_task() -> None:  # after the answer is sent: the task reads the same request
            seen.append(task_id_of(request.headers, progress))

        return JSONResponse({"task_id": GIVEN, "status": "in_progress"}, background=BackgroundTask(run_task))

    routes = [
        Route("/up", upload, methods=["POST"]),
        Route("/up/submit", submit, methods=["POST"]),
        Route("/other", upload, methods=["POST"]),
    ]
    return TaskIds(Starlette(routes=routes), path="/up", task_dir=task_dir)


def post(app: TaskIds, path: str, headers: dict[str, str]) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, headers=headers)

    return asyncio.run(call())


def test_each_upload_gets_its_own_id_and_a_client_cannot_choose_it(tmp_path: Path) -> None:
    app = app_like_bentoml(tmp_path, [])
    chosen = {TASK_ID_HEADER: "a" * 32}
    ids = [post(app, "/up", chosen).json()["task_id"] for _ in range(3)]
    assert len(set(ids)) == 3 and "a" * 32 not in ids
    assert all(len(task_id) == 32 and is_task_id(task_id) for task_id in ids)


def test_a_submitted_task_keeps_the_id_the_client_was_given(tmp_path: Path) -> None:
    seen: list[str] = []
    answer = post(app_like_bentoml(tmp_path, seen), "/up/submit", {TASK_ID_HEADER: "a" * 32})
    assert answer.json()["task_id"] == GIVEN and seen == [GIVEN]
    assert list(tmp_path.glob("*.link")) == []  # the link is read once, then forgotten


def test_other_paths_are_untouched(tmp_path: Path) -> None:
    answer = post(app_like_bentoml(tmp_path, []), "/other", {TASK_ID_HEADER: "c" * 32})
    assert answer.json()["task_id"] == "c" * 32


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"task_id": "' + GIVEN.encode() + b'", "status": "in_progress"}', GIVEN),
        (b'{"error": "no"}', None),
        (b'{"task_id": "../etc"}', None),
        (b"[1, 2]", None),
        (b"not json", None),
    ],
)
def test_submitted_id(body: bytes, expected: str | None) -> None:
    assert submitted_id(body) == expected


def test_links_are_checked_and_pruned(tmp_path: Path) -> None:
    progress = ProgressStore(tmp_path)
    with pytest.raises(ValueError, match="task id"):
        progress.link("a" * 32, "../x")
    progress.link("a" * 32, GIVEN)
    progress.prune(max_age_s=-1)  # a task that never started: its link goes too
    assert progress.take_link("a" * 32) == "a" * 32
