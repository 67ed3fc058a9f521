"""Methods: the ways of building a small training set.

TSGD / SRe2L-style recovery (distill), distribution matching (dm), real-clip selection
baselines (selection) and Salient windows (salient). May import `tsgd_core.runtime`,
`tsgd_core.data` and `tsgd_core.training`.
"""
