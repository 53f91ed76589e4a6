"""The journal: finished sessions in SQLite and the views drawn from it (plots, exports)."""
