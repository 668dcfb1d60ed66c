"""Likely label errors: out-of-fold class probabilities for every labeled crop, ranked by cleanlab."""
