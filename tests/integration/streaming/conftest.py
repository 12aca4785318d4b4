"""The stream tests' fixture: stream names of their own, deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.redis_streams import REDIS_URL


@pytest.fixture
def streams(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = f"test:{uuid.uuid4().hex[:8]}"
    names = {"input": f"{prefix}:in", "output": f"{prefix}:out", "dead": f"{prefix}:dead"}
    yield names
    redis.Redis.from_url(REDIS_URL).delete(*names.values(), f"{names['input']}:request-id-secret")
