"""Shared test setup: every run gets its own BENTOML_HOME; tests are marked by folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tabserve.model_store import StoredModel

# Set before anything imports bentoml: the store location is read once, at import.
_HOME = Path(tempfile.mkdtemp(prefix="tabserve-test-home-"))
os.environ["BENTOML_HOME"] = str(_HOME)
os.environ.pop("TABSERVE_MODEL", None)
os.environ.pop("TABSERVE_CONFIG", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        kind = Path(str(item.fspath)).relative_to(tests).parts[0]  # tests/<unit|integration>/<package>/...
        if kind not in ("unit", "integration"):
            raise pytest.UsageError(f"{item.nodeid}: tests live under tests/unit or tests/integration")
        item.add_marker(getattr(pytest.mark, kind))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def census_model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    """The census-like model (tests/census.py), trained once per run for unit and integration tests."""
    from tests.census import train_census_model  # imports bentoml: after BENTOML_HOME is set

    return train_census_model(tmp_path_factory.mktemp("census"))
