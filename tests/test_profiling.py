import time

import torch

from tsgd_core.runtime.profiling import measure


def test_measure_sees_new_memory_even_after_large_frees():
    held = [torch.ones(1000, 1000) for _ in range(40)]  # 160 MB, then freed into the heap
    del held
    with measure("cpu", interval_s=0.002) as usage:
        block = torch.ones(25, 1000, 1000)  # 100 MB
        time.sleep(0.05)
    del block
    assert 80 < usage.peak_mb < 200
    assert usage.wall_s >= 0.05


def test_measure_reports_little_for_work_that_allocates_nothing():
    with measure("cpu") as usage:
        sum(range(10000))
    assert usage.peak_mb < 20
