"""Storage backends, chosen by URL: ``sqlite:///path`` (embedded default) and more by extra."""
