"""Retraining: a challenger trained on recent labelled rows, compared with the champion, and the decision."""
