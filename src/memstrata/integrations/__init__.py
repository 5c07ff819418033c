"""Framework integrations, each an optional extra that calls memstrata's public API only.

``memstrata.integrations.<framework>`` imports the framework lazily; when it is missing, the import raises
a ConfigurationError that names the extra to install (``pip install 'memstrata[langgraph]'``).
"""
