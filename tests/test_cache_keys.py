"""The cache keys of every cell of the grids and of their teachers stay what they were.

`data/cache_keys.json` holds {name: [distill key, eval key]} for every cell of the default,
quick and smoke grids and of the ladder's 8x32 rung, and the teacher key of each profile. A
change of these keys (a moved module that a key hashed, a renamed field) would make every
cached teacher, distilled set and evaluation unreachable; this test fails first. Teacher keys
name the recipe alone, not the CPU thread count (a cache from before that has to be rebuilt).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tsgd_core.grid import experiments, ladder

KEYS = Path(__file__).with_name("data") / "cache_keys.json"


def current_keys() -> dict[str, object]:
    keys: dict[str, object] = {}
    for profile in ("default", "quick", "smoke"):
        grid = experiments.build_grid(profile)
        for group in dataclasses.fields(grid):
            for spec in getattr(grid, group.name):
                keys[f"{profile}/{group.name}/{spec.name()}"] = [
                    spec.distill_key(),
                    spec.eval_key(),
                ]
        keys[f"teacher/{profile}"] = experiments.expected_teacher_key(profile)
    for spec in ladder.rung_specs(8, 32):
        keys[f"ladder/{spec.name()}"] = [spec.distill_key(), spec.eval_key()]
    return keys


@pytest.mark.slow
def test_cache_keys_are_unchanged():
    expected = json.loads(KEYS.read_text())
    got = json.loads(json.dumps(current_keys()))
    assert set(got) == set(expected), sorted(set(got) ^ set(expected))[:5]
    changed = sorted(name for name in expected if got[name] != expected[name])
    assert not changed, f"{len(changed)} cache key(s) changed, e.g. {changed[:3]}"


def test_two_cells_share_an_evaluation_only_when_they_train_on_one_set():
    """An eval key names the set it trains on: cells with one key have one distill key, or are
    Random's set and the start sets (0 iterations from real clips) of one draw. Recovery
    without augmentation once shared the recovered set's key (the recipe replaced its flag)."""
    seen: dict[str, tuple] = {}
    for profile in ("default", "quick"):
        for spec in (
            s for specs in experiments.build_grid(profile).groups().values() for s in specs
        ):
            trains_on = (
                ("start", json.dumps(spec.draw_fields("random"), sort_keys=True))
                if spec.is_start_set or spec.method == "random"
                else ("set", spec.distill_key())
            )
            assert seen.setdefault(spec.eval_key(), trains_on) == trains_on, spec.name()
    noaug = dataclasses.replace(experiments.RunSpec(ipc=5, labels=("soft",)), recover_augment=False)
    with_aug = dataclasses.replace(noaug, recover_augment=True)
    assert noaug.eval_key() != with_aug.eval_key()
