"""The `tabserve` command: one entry point, one logging setup, one error path."""
