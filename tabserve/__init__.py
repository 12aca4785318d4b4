"""tabserve: train, serve, batch-score, stream-score and monitor a scikit-learn tabular model."""
