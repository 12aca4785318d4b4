"""Drift and quality of what is served: the drift job, Evidently reports, quality statistics."""
