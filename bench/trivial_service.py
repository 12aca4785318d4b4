"""The framework's floor: a BentoML service whose `/predict` returns a constant (bench/scaling.py).

Same defaults as the real service (access log off); workers come from `TRIVIAL_WORKERS`
(like the real service's `TABSERVE_WORKERS`).
"""

from __future__ import annotations

import os
from typing import Any

import bentoml

ANSWER = {"prediction": "benign", "probabilities": {"benign": 0.9, "malignant": 0.1}}


@bentoml.service(workers=int(os.environ.get("TRIVIAL_WORKERS", "1")), logging={"access": {"enabled": False}})
class Trivial:
    @bentoml.api
    async def predict(self, record: dict[str, Any]) -> dict[str, Any]:
        return ANSWER
