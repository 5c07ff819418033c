"""Ingestion steps: extraction, importance, dedup, relations and conflicts. All I/O-free."""
