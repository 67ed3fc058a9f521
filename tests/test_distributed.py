"""Scale-out on torch.distributed: 2 gloo ranks on the CPU give what one process gives."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tsgd_core import distributed
from tsgd_core.artifact import DistilledSet
from tsgd_core.data import ClipSet
from tsgd_core.distill import TSGDConfig, distill_tsgd
from tsgd_core.evaluate import StudentConfig, evaluate_set
from tsgd_core.models import build_model
from tsgd_core.teacher import ModelConfig
from tsgd_core.train import FitConfig, fit

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


def test_torchrun_detection_reads_world_size(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.launched_by_torchrun()
    monkeypatch.delenv("WORLD_SIZE")
    assert not distributed.launched_by_torchrun()
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"
