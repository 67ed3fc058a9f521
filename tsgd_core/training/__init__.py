"""Training: networks and the loops that fit them.

Models, the train loop, augmentation (with the saliency signal TSGF that guides it), the teacher
(squeeze), relabelling and the student protocol (evaluate). May import `tsgd_core.runtime` and
`tsgd_core.data`.
"""
