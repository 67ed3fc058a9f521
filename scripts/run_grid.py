#!/usr/bin/env python
"""Execute the notebooks of the report with papermill: the grid of experiments, then the report.

    python scripts/run_grid.py --profile quick --reports reports/quick

`./run_all.sh` is the command users type; it calls this script. The runner itself is library
code: `tsgd_core/cli/run_grid.py` (options and the run), `tsgd_core/grid/planner.py` (steps and
shards), `tsgd_core/grid/kernels.py` (executing them) and `tsgd_core/grid/workers.py` (parallel
workers); `--help` lists the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed

from tsgd_core.cli.run_grid import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
