"""Training a Pipeline on a table, evaluating it against baselines, saving it to the model store."""
