"""Saliency-guided training (baseline, SGT, SMOOT): the step object, the loop, checkpoints."""
