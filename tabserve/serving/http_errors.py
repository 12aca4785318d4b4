"""Client errors stay small: bounded error bodies, and one WARNING log line instead of a traceback.

Probed from outside (issue 12): a 1 MB key name came back whole in a 1 MB error body, and each
bad request wrote a ~1.9 KB ERROR traceback to the log (1,000 bad 13-byte requests: 1.94 MB).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

MAX_ECHOED_CHARS = 200  # of any one string in an error body (a field name, a value, a message)
MAX_LISTED_ITEMS = 20  # of any one list in an error body (e.g. validation errors)
MAX_ERROR_BODY_BYTES = 16 * 1024  # a body that is not JSON is cut here
# BentoML logs every exception of an endpoint (client errors included) on this module's logger.
# The name is all we use: a logger name, not an import (the lint ban on bentoml._internal
# imports, TID251, does not apply; if BentoML renames the module, the traceback comes back).
BENTOML_ENDPOINT_LOGGER = "bentoml._internal.server.http_app"
CLIENT_ERROR_STATUS = range(400, 500)


def bound_text(text: str, limit: int = MAX_ECHOED_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def bound_value(value: Any) -> Any:
    """Pure: the same JSON value with every string, key and list cut to a readable size."""
    if isinstance(value, str):
        return bound_text(value)
    if isinstance(value, list):
        kept = [bound_value(item) for item in value[:MAX_LISTED_ITEMS]]
        if len(value) > MAX_LISTED_ITEMS:  # an object, like the validation errors it stands for
            kept.append({"type": "truncated", "msg": f"{len(value) - MAX_LISTED_ITEMS} more not listed"})
        return kept
    if isinstance(value, dict):
        return {bound_text(str(key)): bound_value(item) for key, item in value.items()}
    return value


MAX_MESSAGE_CHARS = 1_000  # of the one-line summary of validation errors
SINGLE_RECORD_ARGUMENT = "record"  # /predict's body: its features are named without it
PYDANTIC_SUMMARY = re.compile(r"^\d+ validation errors? for ")  # BentoML's 400, title included


def field_name(loc: list[Any]) -> str:
    """Pure: a pydantic location as the client wrote it: `mean radius`, `records[2].age`, `body`."""
    if len(loc) > 1 and loc[0] == SINGLE_RECORD_ARGUMENT:
        loc = loc[1:]
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else f"{'.' if name else ''}{part}"
    return name or "body"


def validation_summary(detail: list[Any]) -> str:
    """Pure: "2 invalid fields: age: Field required; sex: Input should be ..." from pydantic's list."""
    parts = [
        f"{bound_text(field_name(list(item['loc'])))}: {bound_text(str(item.get('msg', 'invalid')))}"
        for item in detail[:MAX_LISTED_ITEMS]
        if isinstance(item, dict) and isinstance(item.get("loc"), list | tuple)
    ]
    if len(detail) > MAX_LISTED_ITEMS:
        parts.append(f"{len(detail) - MAX_LISTED_ITEMS} more not listed")
    count = len(detail)
    return bound_text(
        f"{count} invalid field{'' if count == 1 else 's'}: " + "; ".join(parts), MAX_MESSAGE_CHARS
    )


def bound_error_body(body: bytes) -> bytes:
    """Pure: an error body fit to send back: JSON bounded value by value, anything else cut.

    BentoML answers its own 4xx errors as a one-item list (`[{"error": ...}]`, a tuple in its
    code); it is unwrapped so that every error body is an object with `error`.
    """
    try:
        value = json.loads(body)
    except ValueError:
        return body[:MAX_ERROR_BODY_BYTES]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    bounded = bound_value(value)
    # BentoML says "2 validation error for Input" (pydantic's class title): name the fields instead.
    summarised = isinstance(value, dict) and isinstance(value.get("detail"), list)
    if summarised and PYDANTIC_SUMMARY.match(str(value.get("error", ""))):
        bounded["error"] = validation_summary(value["detail"])
    return json.dumps(bounded).encode()


def _status_of(error: BaseException) -> int | None:
    """The HTTP status BentoML answers for this exception, if it is a client error."""
    if type(error).__name__ == "ValidationError":  # pydantic's: BentoML answers 400
        return 400
    code = getattr(error, "error_code", None)  # BentoMLException's HTTPStatus
    status = getattr(code, "value", None)
    return status if isinstance(status, int) else None


class ClientErrorLogFilter(logging.Filter):
    """Turns BentoML's ERROR-with-traceback for a client's mistake into one WARNING line.

    Server errors (5xx, anything unexpected) keep their traceback: those are ours to fix.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = _status_of(error) if error is not None else None
        if error is None or status not in CLIENT_ERROR_STATUS:
            return True
        path, method = (record.args or ("?", "?"))[:2] if isinstance(record.args, tuple) else ("?", "?")
        summary = bound_text(" ".join(str(error).split()))
        record.msg, record.args = "%s on %s [%s]: %s", (status, path, method, summary)
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install the filter on BentoML's endpoint logger (once per process)."""
    logger = logging.getLogger(BENTOML_ENDPOINT_LOGGER)
    if not any(isinstance(existing, ClientErrorLogFilter) for existing in logger.filters):
        logger.addFilter(ClientErrorLogFilter())
