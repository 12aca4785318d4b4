"""How the command-line tools end on an error: one line on stderr and exit code 2 for an error
they expect; a traceback and exit code 3 for a bug (never 1, which `tabserve monitor` uses for
"drift": a cron job must not read a crash as an alarm)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from tabserve.errors import TabserveError

EXIT_ERROR = 2
EXIT_BUG = 3


def run_reporting_errors(action: Callable[[], int]) -> int:
    """Run a CLI command; our own errors and an unreachable database become exit code 2, no traceback."""
    try:
        return action()
    except TabserveError as error:
        print(f"error: {error}", file=sys.stderr)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error.__class__.__name__)
        print(f"error: prediction-log database unreachable: {reason.strip()}", file=sys.stderr)
    except Exception:  # a bug: the whole traceback, and an exit code no command gives on purpose
        traceback.print_exc()
        print(f"error: unexpected failure (exit {EXIT_BUG}); the traceback above says where", file=sys.stderr)
        return EXIT_BUG
    return EXIT_ERROR
