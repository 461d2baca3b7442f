"""Load benchmark: the stock `rasa init` bot against the project stack (issue 14, item 1).

`make bench` (or `python -m bench`); see bench/README.md.
"""
