"""Embedding and LLM providers."""
