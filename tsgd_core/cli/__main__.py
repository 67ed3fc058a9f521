"""`python -m tsgd_core.cli` (and `torchrun ... -m tsgd_core.cli`): the `tsgd` program."""

import sys

from .app import main

sys.exit(main())
