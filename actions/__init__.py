"""Custom actions (rasa-sdk), one module per feature, and the back-end clients in ``clients/``."""
