"""The typical hand-written alternative: FastAPI + uvicorn, joblib-loads the pipeline, sync POST /predict."""

from __future__ import annotations

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI

PIPELINE = joblib.load(os.environ["PLAIN_MODEL_PATH"])
CLASSES = [str(label) for label in PIPELINE.classes_]
app = FastAPI()


@app.post("/predict")
def predict(body: dict[str, Any]) -> dict[str, Any]:
    proba = PIPELINE.predict_proba(pd.DataFrame([body["record"]]))[0]
    best = int(proba.argmax())
    return {"prediction": CLASSES[best], "probabilities": dict(zip(CLASSES, proba.tolist(), strict=True))}
