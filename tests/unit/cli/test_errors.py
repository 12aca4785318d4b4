"""How the CLIs end: expected errors exit 2 with one line, bugs exit 3 with their traceback."""

from __future__ import annotations

import pytest

from tabserve.cli.errors import EXIT_BUG, EXIT_ERROR, run_reporting_errors
from tabserve.errors import DataError


def test_an_expected_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def refused() -> int:
        raise DataError("bad file")

    assert run_reporting_errors(refused) == EXIT_ERROR == 2
    assert capsys.readouterr().err == "error: bad file\n"


def test_a_bug_exits_3_not_the_alarm_code(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> int:
        raise KeyError("oops")

    assert run_reporting_errors(broken) == EXIT_BUG == 3
    assert "KeyError" in capsys.readouterr().err
