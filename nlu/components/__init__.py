"""Custom Rasa NLU components for Vietnamese-first understanding (named in config.yml)."""
