"""`/docs.json` says what the service really answers: BentoML's generated document does not.

BentoML 1.4.40 declares a 400 body's `detail` as a string (it is a list of validation errors),
task states `success`/`failure`/`cancelled` (it answers `completed`/`failed`/`canceled`), times
that `/submit` does not answer, and
knows nothing of the 413, 415 and 429 that `tabserve.serving.http_limits` answers. A client generated
from the document, or schemathesis, would reject real answers. The document is amended on its
way out; BentoML offers no public hook to change it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

DOCS_PATH = "/docs.json"
ERROR_REF = "#/components/schemas/ClientError"
CLIENT_ERROR_SCHEMA = {
    "type": "object",
    "title": "ClientError",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "title": "What is wrong, for a person to act on"},
        "detail": {
            "title": "Each validation error: loc (where), type, msg",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        },
    },
}
TASK_STATES = ["in_progress", "completed", "failed", "canceled", "success", "failure", "cancelled"]
LIMIT_RESPONSES = {
    "413": "Request body over `serving.max_body_bytes` (uploads: `serving.max_upload_bytes`)",
    "415": "Content type this endpoint does not take",
    "429": "Over `serving.max_concurrency` requests in progress; retry after `Retry-After` seconds",
}
BODY_METHODS = ("post", "put")
KEY_RESPONSES = {
    "401": "No API key, or an unknown one (`Authorization: Bearer <key>`)",
    "403": "The API key lacks the right for this endpoint",
}
BEARER = {"type": "http", "scheme": "bearer", "description": "An API key (docs/privacy.md)"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def _never(_: str) -> bool:
    return False


def amend_openapi(doc: dict[str, Any], protects: Callable[[str], bool] = _never) -> dict[str, Any]:
    """Pure: the document with the error bodies, task states and limit answers the service gives;
    the paths `protects` names declare the API key they need, and its 401 and 403."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ClientError"] = CLIENT_ERROR_SCHEMA
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        if name in schemas:
            schemas[name]["properties"]["detail"] = CLIENT_ERROR_SCHEMA["properties"]["detail"]  # type: ignore[index]
    task_status = schemas.get("TaskStatusResponse", {})
    if "status" in task_status.get("properties", {}):
        task_status["properties"]["status"]["enum"] = TASK_STATES
        task_status["required"] = ["task_id", "status"]  # `/submit` answers these two only
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = LIMIT_RESPONSES if method in BODY_METHODS else {"429": LIMIT_RESPONSES["429"]}
            if protects(path):
                codes = {**codes, **KEY_RESPONSES}
                operation["security"] = [{"apiKey": []}]
                doc["components"].setdefault("securitySchemes", {})["apiKey"] = BEARER
            for code, description in codes.items():
                operation["responses"].setdefault(code, _error_response(description))
            retry = operation["responses"]["429"]
            retry.setdefault("headers", {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}})
    return doc


class OpenApiAmendments:
    """ASGI middleware: rewrites the `/docs.json` answer with `amend_openapi`."""

    def __init__(self, app: Any, protects: Callable[[str], bool] = _never) -> None:
        self.app = app
        self.protects = protects

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != DOCS_PATH:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def amended_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(parts)
            if start.get("status") == 200:
                body = json.dumps(amend_openapi(json.loads(body), self.protects)).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, amended_send)
