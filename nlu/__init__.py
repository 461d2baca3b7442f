"""Language understanding: training data (vi/, en/, lookups/) and custom pipeline components."""
