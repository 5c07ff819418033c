"""``python -m memstrata.cli``: the ``memstrata`` command."""

from memstrata.cli import main

main()
