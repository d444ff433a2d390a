"""Hyperparameter sweeps (docs/design.md "Sweeps"): a base spec, a search space, trials as jobs.

Sampling and pruning are Optuna's; this package maps nnq's rows to Optuna and back, validates
requests, schedules trials and shows the results. No Flask here: the API, the workers'
scheduler and the CLI share these functions.
"""
