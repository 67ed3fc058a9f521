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

from .app import (  # noqa: F401
    build_parser,
    cli_advice,
    error_line,
    kept_after_interrupt,
    main,
    one_line_warnings,
    os_error_text,
    run_command,
)
from .commands import (  # noqa: F401
    artifact_spec,
    benchmark_splits,
    build_spec,
    check_artifact_fits,
    check_spec_data,
    cmd_data,
    cmd_distill,
    cmd_evaluate,
    cmd_export,
    cmd_grid,
    cmd_teacher,
    cost_text,
    eval_overrides,
    evaluate_artifact,
    evaluate_new_spec,
    given_spec_flags,
    preview_clips,
    print_results,
    print_splits,
    relabel_teacher_key,
    spec_params,
)
from .options import (  # noqa: F401
    BUG_REPORT_HINT,
    CLI_ADVICE,
    DATASET_ONLY_FLAGS,
    EXAMPLES,
    INT_TYPES,
    PREVIEW_CLIPS_PER_CLASS,
    SPEC_FLAGS,
    CliError,
    _Formatter,
    _parsed,
    _Parser,
    add_dataset_options,
    add_preview_options,
    add_spec_options,
    check_cache_dir,
    check_output,
    check_suffix,
    class_count_text,
    common_options,
    dataset_text,
    device_arg,
    fail,
    flag_name,
    frame_rate,
    image_size,
    nonnegative_float,
    nonnegative_int,
    one_line,
    path_arg,
    percent,
    positive_float,
    positive_int,
    prepare_dataset,
    probability,
)
