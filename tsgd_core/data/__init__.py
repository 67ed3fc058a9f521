"""Data: the clips every stage reads, and the files they live in.

The synthetic motion benchmark, real video datasets (decoding, decode cache, dataset specs),
`ClipSet` / `Splits`, the distilled-set artifact format and atomic file storage. May import
`tsgd_core.runtime` only.
"""
