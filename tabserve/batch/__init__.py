"""Scoring files: local chunked CSV/Parquet scoring and the same core on Spark."""
