"""Schemathesis over every operation of the served model's `/docs.json` (issue 12).

Valid and invalid requests generated from the document itself: no answer may be a server error,
and every answer (400s included) must be one the document declares, shaped as it declares.
The number of examples per operation is bounded so the whole run stays near a minute.

Schemathesis's pytest loader (`schemathesis.pytest.from_fixture`) fails on pytest 9
(`'Function' object has no attribute '_nodeid'`), so each operation's Hypothesis strategy
(`operation.as_strategy`) is driven here, inside one test that starts the real service.
The service requires API keys, as the image runs it; every case carries a key with every right.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.integration.conftest import bearer

EXAMPLES_PER_OPERATION = 20  # per generation mode: 16 operations x 2 modes x 20, 1-2 minutes
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,  # a shared 2-core machine: latency is not what this test judges
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failing case is reported as is
)


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """None if every generated case passes the checks, else the first failure, described."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30, headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing to send wrong (no parameters, no body): nothing to test
        return None
    except Exception as failure:
        return f"{operation.method.upper()} {operation.path} ({mode}): {str(failure)[:1500]}"
    return None


def test_every_operation_answers_as_documented(keyed_service_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{keyed_service_url}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 16  # predict, batch, feedback, file tasks, health: all of them
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz(operation, mode, bearer("full"))) is not None
    ]
    assert not failures, "\n\n".join(failures)
