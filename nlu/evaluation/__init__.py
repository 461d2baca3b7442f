"""NLU evaluation harness: compares the project pipeline with Rasa's default pipeline.

`compare` scores both on the held-out set (tests/nlu/heldout); `jointbert` on any dataset in
JointBERT layout (e.g. PhoATIS). Pure scoring lives in `metrics` and `conlleval`, data
conversion in `bio`, and everything that imports Rasa in `rasa_runner`, so the scoring code can
be unit-tested without loading TensorFlow.
"""
