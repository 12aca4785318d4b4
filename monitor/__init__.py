"""`python -m monitor`: drift and quality of the served model against its reference."""
