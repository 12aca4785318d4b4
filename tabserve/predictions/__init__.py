"""The prediction log: a write-ahead journal, a background writer, a spool, the database."""
