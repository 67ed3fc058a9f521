"""Scale-out on torch.distributed: 2 gloo ranks on the CPU give what one process gives."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tsgd_core.cli import main as cli_main
from tsgd_core.cli import run_command
from tsgd_core.data.artifact import DistilledSet, load_distilled
from tsgd_core.data.clips import ClipSet
from tsgd_core.methods.distill import TSGDConfig, distill_tsgd
from tsgd_core.runtime import distributed
from tsgd_core.training.evaluate import StudentConfig, evaluate_set
from tsgd_core.training.models import build_model
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import CHANNELS_LAST_ENV, FitConfig, fit, to_device, use_channels_last

SHAPE = (3, 4, 8, 8)
K = 3
WORLD = 2
TIMEOUT_S = 120


def clips(per_class: int, seed: int) -> ClipSet:
    g = torch.Generator().manual_seed(seed)
    videos = torch.rand(K * per_class, *SHAPE, generator=g)
    return ClipSet(videos, torch.arange(K).repeat_interleave(per_class), ["a", "b", "c"])


def bn_teacher() -> torch.nn.Module:
    """A tiny BatchNorm ConvNet3D with running statistics from a few train-mode passes."""
    model = build_model("convnet3d", K, SHAPE, width=4, depth=2, norm="batch", seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            model.train()(torch.rand(6, *SHAPE, generator=g))
    return model.eval()


RECOVER = TSGDConfig(ipc=3, iterations=3, seed=5)  # 3 slots over 2 ranks: uneven on purpose
STUDENT = StudentConfig(
    model=ModelConfig(width=4, depth=1, norm="instance"),
    fit=FitConfig(steps=3, batch_size=6, lr=1e-3, optimizer="adamw"),
    labels="hard",
)
SEEDS = (0, 1, 2)
DDP_FIT = FitConfig(steps=4, batch_size=6, lr=1e-2, optimizer="adamw", eval_every=2)


def recover() -> DistilledSet:
    return distill_tsgd(bn_teacher(), clips(4, seed=0), RECOVER, progress=False)


def student_accuracies() -> list[float]:
    return evaluate_set(
        clips(4, 0), clips(2, 1), STUDENT, seeds=SEEDS, device="cpu", progress=False
    ).accs


def ddp_teacher() -> dict:
    model = build_model("convnet3d", K, SHAPE, width=4, depth=2, norm="batch", seed=3)
    result = fit(model, clips(6, 2), DDP_FIT, val=clips(2, 3), progress=False, data_parallel=True)
    return {"state": model.state_dict(), "clips_seen": result.clips_seen, "val": result.history}


def work() -> dict:
    """What every rank computes; each returns its own view of the results."""
    ds = recover()
    return {
        "rank": distributed.context().rank,
        "videos": ds.videos,
        "history": ds.history,
        "accs": student_accuracies(),
        "ddp": ddp_teacher(),
    }


def _rank_main(rank: int, world: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # as the reference: reductions run in the same order
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",  # a file rendezvous: no port to pick
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=TIMEOUT_S),
    )
    try:
        torch.save(work(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_on_ranks(tmp_path: Path, world: int = WORLD) -> list[dict]:
    """`work()` on `world` spawned gloo ranks; their results, by rank."""
    context = mp.spawn(
        _rank_main, args=(world, str(tmp_path / "store"), str(tmp_path)), nprocs=world, join=False
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} ranks did not finish within {TIMEOUT_S} s")
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module")
def single_and_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = recover()
        single = {"videos": ds.videos, "history": ds.history, "accs": student_accuracies()}
    finally:
        torch.set_num_threads(threads)
    return single, run_on_ranks(tmp_path_factory.mktemp("ranks"))


@pytest.mark.slow
def test_sharded_recover_equals_the_single_process_set(single_and_ranks):
    single, ranks = single_and_ranks
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:  # every rank ends with the whole set, gathered in slot order
        assert torch.equal(r["videos"], single["videos"])
        assert r["history"] == single["history"]
    assert single["videos"].shape == (K * RECOVER.ipc, *SHAPE)


@pytest.mark.slow
def test_evaluation_seeds_spread_over_ranks_give_the_single_process_accuracies(single_and_ranks):
    single, ranks = single_and_ranks
    assert len(single["accs"]) == len(SEEDS)
    for r in ranks:
        assert r["accs"] == single["accs"]


@pytest.mark.slow
def test_ddp_teacher_ends_with_the_same_weights_and_statistics_on_every_rank(single_and_ranks):
    _, ranks = single_and_ranks
    first, second = (r["ddp"] for r in ranks)
    assert first["state"].keys() == second["state"].keys()
    for name, value in first["state"].items():
        assert torch.equal(value, second["state"][name]), name
    assert first["val"]["val_acc"] == second["val"]["val_acc"]
    start = build_model("convnet3d", K, SHAPE, width=4, depth=2, norm="batch", seed=3).state_dict()
    assert any(not torch.equal(start[n], v) for n, v in first["state"].items()), "it trained"
    assert first["clips_seen"] == DDP_FIT.steps * DDP_FIT.batch_size  # global batches counted


# ---------------------------------------------------------------------------------------------
# The helpers alone (one process)


def test_slots_are_dealt_round_robin_and_cover_every_index_once():
    shares = [distributed.owned(7, distributed.DistContext(rank=r, world_size=3)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert distributed.owned(4) == [0, 1, 2, 3], "one process owns everything"


def test_a_split_run_says_which_rank_owns_which_items(capsys: pytest.CaptureFixture[str]):
    items = [f"slot {j}" for j in range(1, 6)]
    assert distributed.split_summary("recover", items, 2) == (
        "recover over 2 ranks: rank 0 owns slot 1, slot 3, slot 5; rank 1 owns slot 2, slot 4"
    )
    assert distributed.split_summary("students", ["seed 7"], 2).endswith("rank 1 owns nothing")
    for rank in (0, 1):  # rank 0 alone prints it
        distributed.announce_split("recover", items, distributed.DistContext(rank, 2))
    distributed.announce_split("recover", items)  # one process: nothing is split, nothing said
    assert capsys.readouterr().out == distributed.split_summary("recover", items, 2) + "\n"


def test_rank_shares_of_a_batch_make_up_the_batch():
    batch = (torch.arange(7), torch.arange(7) * 10)
    parts = [
        distributed.rank_share(batch, distributed.DistContext(rank=r, world_size=2))
        for r in range(2)
    ]
    assert sorted(torch.cat([p[0] for p in parts]).tolist()) == list(range(7))
    assert torch.equal(parts[1][1], parts[1][0] * 10)


def test_single_process_helpers_are_no_ops():
    assert distributed.context() == distributed.SINGLE and distributed.is_main()
    assert distributed.gather_ordered({1: "b", 0: "a"}, 2) == ["a", "b"]
    assert distributed.agree(3) == 3
    with pytest.raises(RuntimeError, match=r"items \[2\] were computed by no rank"):
        distributed.gather_ordered({0: "a", 1: "b"}, 3)


def test_a_batch_smaller_than_the_ranks_is_refused():
    with pytest.raises(ValueError, match="cannot be split over 4 ranks: raise batch_size"):
        distributed.check_batch_splits(3, distributed.DistContext(rank=0, world_size=4))


def test_a_rank_without_a_gpu_of_its_own_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.own_gpu(1) == 1
    with pytest.raises(
        ValueError, match="local rank 2 has no GPU of its own .2 visible.: start at"
    ):
        distributed.own_gpu(2)


def test_torchrun_detection_reads_world_size(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.launched_by_torchrun()
    monkeypatch.delenv("WORLD_SIZE")
    assert not distributed.launched_by_torchrun()
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"


# ---------------------------------------------------------------------------------------------
# The command line under torchrun

ROOT = Path(__file__).resolve().parents[1]
SMOKE_DISTILL = ["distill", "--method", "tsgd", "--ipc", "2", "--profile", "smoke"]


def torchrun(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m tsgd_core.cli ...` (its rendezvous picks
    a free port), on one thread per rank as the in-process reference."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(WORLD), "-m", "tsgd_core.cli", *argv]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def one_thread_cli(*argv: str) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return cli_main(list(argv))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_torchrun_distill_trains_a_ddp_teacher_and_writes_the_single_process_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    two = tmp_path / "two.tsgd.pt"
    done = torchrun(
        *SMOKE_DISTILL,
        "--cache-dir",
        "ddp",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(two),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("saved:") == 1, "rank 0 alone prints and writes"
    # at its start the job says which rank optimises which IPC slots, once
    split = re.findall(
        r"tsgd recover of \d+ classes x 2 IPC slots .*? over 2 ranks: (.*)", done.stdout
    )
    assert split == ["rank 0 owns IPC slot 1; rank 1 owns IPC slot 2"], done.stdout[-2000:]
    teachers = list((tmp_path / "ddp" / "teachers").glob("*.pt"))
    assert len(teachers) == 1 and not list(tmp_path.rglob(".*.tmp*")), "one atomic checkpoint"
    stamp = teachers[0].stat().st_mtime_ns

    # the 2-process teacher is reused from the cache, not trained again
    assert (
        one_thread_cli(
            "teacher", "--profile", "smoke", "--cache-dir", str(tmp_path / "ddp"), "--quiet"
        )
        == 0
    )
    assert teachers[0].name.removesuffix(".pt") in capsys.readouterr().out
    assert teachers[0].stat().st_mtime_ns == stamp

    # one process distilling against the same teacher gives the same set, bit for bit
    shutil.copytree(tmp_path / "ddp" / "teachers", tmp_path / "single" / "teachers")
    one = tmp_path / "one.tsgd.pt"
    code = one_thread_cli(
        *SMOKE_DISTILL, "--cache-dir", str(tmp_path / "single"), "--quiet", "--out", str(one)
    )
    assert code == 0
    a, b = load_distilled(one), load_distilled(two)
    assert torch.equal(a.videos, b.videos) and torch.equal(a.labels, b.labels)
    assert a.history == b.history and a.teacher_key == b.teacher_key


def test_cuda_options_stay_off_on_the_cpu(monkeypatch):
    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")  # put back as it was after the test
    args = argparse.Namespace(func=lambda args: None, channels_last=True)
    run_command(args)  # --channels-last asks for the format through the environment
    assert os.environ[CHANNELS_LAST_ENV] == "1"
    assert use_channels_last(torch.device("cuda")) and not use_channels_last(torch.device("cpu"))
    videos = torch.rand(2, *SHAPE)
    assert to_device(videos, torch.device("cpu")) is videos, "no pinning or copy on the CPU"
    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")
    assert not use_channels_last(torch.device("cuda"))
