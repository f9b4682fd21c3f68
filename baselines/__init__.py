"""Baselines: the roster of baseline models and the non-LMM baselines (chance, majority, experts).

They arrive with issues 5 to 7; this package holds its place in the layout.
"""
