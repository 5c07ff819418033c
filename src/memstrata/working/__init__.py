"""Working memory: what a conversation is about right now (goals, tasks, entities, topic, constraints).

``tracker`` folds messages into a state without I/O; ``keeper`` reads and writes the tiers around it.
"""
