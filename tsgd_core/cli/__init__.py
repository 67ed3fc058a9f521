"""The `tsgd` command line: data, teacher, distill, evaluate, export and grid.

Every command is a thin layer over `tsgd_core.grid.experiments` (and the modules it uses): it turns
flags into a `RunSpec` or a profile name, calls the library, prints a short summary and, when
asked, writes one output file atomically. Bad input (an IPC a class cannot give, a missing
file, a teacher for other classes, an unwritable output, a request too large for memory, ...)
ends with one line ``tsgd: error: ...`` on stderr and exit code 2, checked before the work starts
wherever it can be; an unexpected failure is one ``tsgd: internal error: ...`` line and exit code
1 (``TSGD_DEBUG=1`` shows the traceback); Ctrl-C says what was kept and exits with 130.

Under torchrun (`torchrun --nproc_per_node N -m tsgd_core.cli ...`) a command runs as one rank
of the job (see `tsgd_core.runtime.distributed`): the work is split over the ranks, and rank 0 alone
prints and writes files.

Heavy modules (torch and everything that uses it) are imported when the parser is built, not
at import time of this module; `tsgd_core.data.real_video` is imported only by `tsgd data --dataset`.

Modules: `options` (flags), `commands` (one function per command), `app` (parser, `main`),
`run_grid` (the grid runner behind `./run_all.sh`). This is the top room: it may import every
other room of `tsgd_core`.
"""

from __future__ import annotations

from . import app, commands, options

# `from tsgd_core import cli` then `cli.<name>` reaches every top-level name of these
# modules (and what they import), as it did when they were one file
for _module in (options, commands, app):
    globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
del _module
