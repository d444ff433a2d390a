"""Hyperparameter sweeps (docs/design.md "Sweeps"): a base spec, a search space, trials as jobs.

No Flask here: the API, the workers' scheduler and the CLI share these functions.
"""
