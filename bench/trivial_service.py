"""The framework's floor: a BentoML service whose `/predict` returns a constant (bench/scaling.py).

Same defaults as the real service (access log off); workers come from
`BENTOML_CONFIG_OPTIONS=services.Trivial.workers=N`.
"""

from __future__ import annotations

from typing import Any

import bentoml

ANSWER = {"prediction": "benign", "probabilities": {"benign": 0.9, "malignant": 0.1}}


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Trivial:
    @bentoml.api
    async def predict(self, record: dict[str, Any]) -> dict[str, Any]:
        return ANSWER
