"""Retrieval: the five stages, fusion, ranking and token budgets."""
