"""A run's context is built once: one `tsgd distill` call looks up its profile once."""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

import tsgd_core.cli.commands  # noqa: F401  (every module of the distill path, loaded)
import tsgd_core.grid.experiments  # noqa: F401
from tsgd_core.cli import main
from tsgd_core.grid import experiments, profiles
from tsgd_core.grid.spec import RunSpec


def count_profile_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of `profiles.get_profile` from now on, through any module that holds the
    name, appended to the returned list (the profile's name a call)."""
    original, calls = profiles.get_profile, []

    def counted(name: str) -> profiles.Profile:
        calls.append(name)
        return original(name)

    for module in list(sys.modules.values()):
        if module.__name__.startswith("tsgd_core") and vars(module).get("get_profile") is original:
            monkeypatch.setattr(module, "get_profile", counted)
    return calls


def distill_random(cache: Path) -> int:
    """One `tsgd distill` of one random clip per class at the smoke profile, quietly."""
    argv = ["distill", "--method", "random", "--ipc", "1", "--profile", "smoke", "--quiet"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        return main([*argv, "--cache-dir", str(cache), "--out", str(cache / "s.tsgd.pt")])


def test_the_counter_sees_every_lookup(monkeypatch):
    calls = count_profile_lookups(monkeypatch)
    profiles.get_profile("smoke")
    experiments.get_profile("smoke")
    assert calls == ["smoke", "smoke"]


def test_one_distill_call_looks_up_its_profile_once(monkeypatch, tmp_path):
    """Before the run's context was built once, a cold call looked it up 15 times (13 with the
    data in memory): the spec's checks and keys, the data, the teacher's recipe, each again."""
    profiles.profile_data.cache_clear()  # a fresh process: nothing in memory yet
    calls = count_profile_lookups(monkeypatch)
    assert distill_random(tmp_path) == 0  # teacher trained, set made
    assert calls == ["smoke"]
    calls.clear()
    assert distill_random(tmp_path) == 0  # data in memory, teacher and set from the cache
    assert calls == ["smoke"]


def test_a_spec_carries_the_profile_it_names():
    spec = RunSpec(method="random", profile="smoke")
    assert spec.prof is profiles.PROFILES["smoke"]
    assert spec == RunSpec(method="random", profile="smoke")
    assert replace(spec, profile="quick").prof is profiles.PROFILES["quick"]
    assert pickle.loads(pickle.dumps(spec)).prof == spec.prof  # grid workers receive specs
    assert "prof" not in asdict(spec)  # records and cache keys hold the name alone


def test_a_run_resolves_its_data_and_teacher_once(monkeypatch, tmp_path):
    """`experiments.run` distils and evaluates in one context: one teacher look-up, not one
    for the set and another for its evaluation."""
    original, calls = experiments.profile_teacher, []

    def counted(*args, **kwargs):
        calls.append(args[0].name)
        return original(*args, **kwargs)

    monkeypatch.setattr(experiments, "profile_teacher", counted)
    spec = RunSpec(method="random", ipc=1, profile="smoke", labels=("hard",), n_students=1)
    ds, row = experiments.run(spec, cache_dir=tmp_path, progress=False)
    assert calls == ["smoke"]
    assert row["acc_hard_mean"] == row["acc_hard_seeds"][0] and len(ds.labels) == 4
