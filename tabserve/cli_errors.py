"""How the command-line tools end on an error they expect: one line on stderr, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from tabserve.errors import TabserveError

EXIT_ERROR = 2


def run_reporting_errors(action: Callable[[], int]) -> int:
    """Run a CLI command; our own errors and an unreachable database become exit code 2, no traceback."""
    try:
        return action()
    except TabserveError as error:
        print(f"error: {error}", file=sys.stderr)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error.__class__.__name__)
        print(f"error: prediction-log database unreachable: {reason.strip()}", file=sys.stderr)
    return EXIT_ERROR
