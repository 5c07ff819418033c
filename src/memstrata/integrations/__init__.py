"""Framework integrations: each ``memstrata.integrations.<framework>`` module implements that framework's own
memory interface over the public ``Memory`` / ``AsyncMemory`` API, and is installed with its extra
(``pip install 'memstrata[crewai]'``). Importing this package imports no framework.
"""
