"""Shared test setup: every run gets its own BENTOML_HOME; tests are marked by folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Set before anything imports bentoml: the store location is read once, at import.
_HOME = Path(tempfile.mkdtemp(prefix="tabserve-test-home-"))
os.environ["BENTOML_HOME"] = str(_HOME)
os.environ.pop("TABSERVE_MODEL", None)
os.environ.pop("TABSERVE_CONFIG", None)


TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/unit/** is `unit`, tests/integration/** is `integration` (subfolders included)."""
    for item in items:
        kind = item.path.resolve().relative_to(TESTS).parts[0]
        if kind in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, kind))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return _HOME
