"""Grid: experiments made of the methods, and the machinery that runs them.

Profiles, one cell (`RunSpec`) and its cached run, the grid of cells, its planner, workers and
shards, the statistics that compare cells, tuning and the resolution ladder. May import every
room below it: `tsgd_core.runtime`, `tsgd_core.data`, `tsgd_core.training`, `tsgd_core.methods`.
"""
