"""`python -m train`: train the configured model and save it to the BentoML model store."""
