"""Predict energy before a run: count what a model does, then E = sum_i E_i * C_i (calibrated)."""
