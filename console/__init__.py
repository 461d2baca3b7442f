"""The content service (Rasa NLG endpoint) and the staff console: console/README.md."""
