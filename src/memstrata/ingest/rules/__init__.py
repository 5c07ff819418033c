"""The offline ``rules`` extractor: spaCy parse -> clauses -> drop rules -> score -> entities, relations, slots.

Pure and I/O-free: the same messages always give the same candidates. Only user messages are read unless
``include_assistant`` is set; assistant text is mostly restatement and boilerplate.

The modules, in the order a message meets them: :mod:`.extractor` (the :class:`RulesExtractor` and candidate
assembly), :mod:`.clauses` (sentence -> clauses), :mod:`.mentions` (entities, referents, owners),
:mod:`.slots` (the single-valued fact of a clause), :mod:`.relations` (graph edges) and :mod:`.phrases`
(values read off noun phrases). Drop rules and scoring live in :mod:`memstrata.ingest.sentence` and
:mod:`memstrata.ingest.importance`, which the extractor shares with ``score_importance``.
"""

from memstrata.ingest.rules.extractor import RulesExtractor

__all__ = ["RulesExtractor"]
