"""Pure helpers shared by every layer: text normalisation and tokens, time expressions, input checks.

Nothing here imports another memstrata package except ``errors`` and ``models``; ingest, retrieve, the
backends and privacy all build on it, so none of them needs to import a sibling.
"""
