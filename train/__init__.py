"""`python -m train`: kept for the project's layout; the same as `tabserve train`."""
