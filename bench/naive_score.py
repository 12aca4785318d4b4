"""The baseline a user writes first: read the whole file with pandas, predict, write."""

import sys

import joblib
import pandas as pd

pipeline_path, source, target = sys.argv[1:4]
pipeline = joblib.load(pipeline_path)
frame = pd.read_parquet(source) if source.endswith(".parquet") else pd.read_csv(source)
proba = pipeline.predict_proba(frame)
frame["prediction"] = pipeline.classes_[proba.argmax(axis=1)]
for index, label in enumerate(pipeline.classes_):
    frame[f"probability_{label}"] = proba[:, index]
frame.to_parquet(target) if target.endswith(".parquet") else frame.to_csv(target, index=False)
