"""The report: gather the flat records of the grid, turn them into tables, figures and a README.

Every number in the report comes from the records that `experiments.run` writes (one
`record.json` per run) and every sentence that compares methods is computed from those numbers,
so the text says "TSGD does not beat ..." whenever the numbers say so. The plotting helpers here
are also what the tutorial notebooks call for their figures (frame strips, saliency over time,
loss curves, confusion matrices), so the notebooks stay short.

Modules: `records` (collect and pool), `tables` and `studies` (numbers), `sentences` (every
text about a number; the tutorials' own in `tutorial_sentences`), `figures` and `clip_figures` (PNG), `readme` (the written report), `book` (the executed
notebooks and the report as a static site, `python -m tsgd_core.report.book`); the
statistics are `tsgd_core.grid.stats`. `from tsgd_core import report` then `report.<name>`
reaches every name of these modules.

Figures are PNG (dpi 120), written atomically; matplotlib runs on the Agg backend. The report
may import every room below it (runtime, data, training, methods, grid), never `tsgd_core.cli`.
"""

from __future__ import annotations

from . import (
    clip_figures,
    figures,
    parts,
    readme,
    records,
    sentences,
    studies,
    tables,
    tutorial_sentences,
)

# `from tsgd_core import report` then `report.<name>` reaches every top-level name of these
# modules (and what they import), as it did when they were one file
for _module in (
    records,
    tables,
    parts,
    studies,
    sentences,
    tutorial_sentences,
    figures,
    clip_figures,
    readme,
):
    globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
del _module
