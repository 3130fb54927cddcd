"""The bottom layer: errors, result types, label sets, atomic file writing, optional extras, numeric helpers.

Everything here depends on numpy, pandas and the standard library only; every other layer may import it.
"""
