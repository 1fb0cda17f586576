"""Predict energy before a run: count what a model does, then E = sum_i E_i * C_i (calibrated).

The public function is `greenai.estimate` (in `greenai.estimation.api`); the package is
`estimation` so that importing it never shadows that function: Python binds a subpackage as an
attribute of its parent at its first import, and a package named `estimate` replaced the
function on `greenai` (`greenai.estimate(model, x)` worked once, then "'module' object is not
callable"). tests/test_public_names.py keeps public names and module names apart.
"""
