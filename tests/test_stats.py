"""Confidence intervals against known cases; pairing of records by (distill seed, student seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tsgd_core.grid import stats

T_0975_DF4 = 2.7764451051977934  # Student-t 97.5 % quantile, 4 degrees of freedom (tables)
T_0975_DF2 = 4.302652729911275


def test_mean_ci_of_one_to_five_is_the_textbook_t_interval():
    mean, low, high = stats.mean_ci([1, 2, 3, 4, 5])
    half = T_0975_DF4 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0
    assert low == pytest.approx(3 - half, abs=1e-12) and high == pytest.approx(3 + half, abs=1e-12)


def test_mean_ci_edge_cases():
    assert stats.mean_ci([7.0, 7.0, 7.0]) == (7.0, 7.0, 7.0)
    mean, low, high = stats.mean_ci([0.4])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in stats.mean_ci([]))
    with pytest.raises(ValueError, match="confidence level"):
        stats.mean_ci([1, 2], level=95)
    # a wider level gives a wider interval
    assert stats.mean_ci([1, 2, 4], 0.99)[1] < stats.mean_ci([1, 2, 4], 0.9)[1]


def test_resolved_means_the_interval_excludes_zero():
    assert stats.resolved(0.1, 0.3) and stats.resolved(-0.3, -0.01)
    assert not stats.resolved(-0.1, 0.2) and not stats.resolved(0.0, 0.2)
    assert not stats.resolved(math.nan, 0.2)


def test_bootstrap_of_a_constant_difference_is_zero_width_at_the_constant():
    low, high = stats.hierarchical_bootstrap_ci({0: [0.02] * 5, 1: [0.02] * 5, 2: [0.02] * 5})
    assert low == pytest.approx(0.02, abs=1e-15) and high == pytest.approx(0.02, abs=1e-15)


def test_bootstrap_is_deterministic_under_its_seed_and_covers_the_mean():
    rng = np.random.default_rng(3)
    groups = {d: list(0.05 + 0.02 * d + 0.01 * rng.standard_normal(5)) for d in range(3)}
    first = stats.hierarchical_bootstrap_ci(groups, n_resamples=2000, seed=7)
    assert first == stats.hierarchical_bootstrap_ci(groups, n_resamples=2000, seed=7)
    assert first != stats.hierarchical_bootstrap_ci(groups, n_resamples=2000, seed=8)
    centre = np.mean([np.mean(v) for v in groups.values()])
    assert first[0] < centre < first[1]
    # the resampled means never leave the range of the values
    values = np.concatenate([np.asarray(v) for v in groups.values()])
    assert values.min() <= first[0] and first[1] <= values.max()


def test_bootstrap_resamples_distill_seeds_not_only_student_seeds():
    # no student noise at all: only the spread between distill seeds can widen the interval
    low, high = stats.hierarchical_bootstrap_ci({0: [0.0] * 4, 1: [0.1] * 4, 2: [0.2] * 4})
    assert low < 0.06 and high > 0.14


def test_two_level_interval_uses_the_distill_seed_means():
    interval = stats.two_level_interval({0: [1.0, 1.0], 1: [2.0, 2.0], 2: [3.0, 3.0]})
    half = T_0975_DF2 * 1.0 / math.sqrt(3)
    assert interval.method == stats.CLUSTER_T and interval.n == 6 and interval.n_distill == 3
    assert interval.mean == 2.0
    assert interval.low == pytest.approx(2 - half) and interval.high == pytest.approx(2 + half)
    assert not interval.resolved  # 2 +- 2.48: three distill seeds make a wide interval


def test_two_level_interval_with_one_distill_seed_falls_back_to_student_seeds():
    interval = stats.two_level_interval({0: [1, 2, 3, 4, 5]})
    assert interval.method == stats.STUDENT_T and interval.n_distill == 1
    assert interval.low == pytest.approx(3 - T_0975_DF4 * math.sqrt(2.5 / 5))
    single = stats.two_level_interval({0: [0.3]})
    assert single.method == stats.NO_INTERVAL and not single.resolved
    assert stats.two_level_interval({}).n == 0


def _rec(distill: int, accs: list[float], students: list[int] | None = None) -> dict:
    rec = {"name": f"x_dseed{distill}", "distill_seed": distill, "acc_soft_seeds": accs}
    if students is not None:
        rec["student_seeds"] = students
    return rec


def test_paired_differences_pair_by_distill_and_student_seed():
    a = [_rec(0, [0.5, 0.6], [10, 11]), _rec(1, [0.7, 0.8], [10, 11])]
    # b lists its student seeds in another order and lacks (1, 11): that pair is left out
    b = [_rec(0, [0.45, 0.4], [11, 10]), _rec(1, [0.6], [10])]
    pairs = stats.paired_differences(a, b, "soft")
    assert list(pairs.columns) == stats.PAIR_COLUMNS
    assert pairs[["distill_seed", "student_seed"]].values.tolist() == [[0, 10], [0, 11], [1, 10]]
    assert pairs["diff"].tolist() == pytest.approx([0.1, 0.15, 0.1])


def test_paired_differences_align_by_position_without_student_seeds():
    pairs = stats.paired_differences([_rec(2, [0.5, 0.6])], [_rec(2, [0.4, 0.4])], "soft")
    assert pairs["student_seed"].tolist() == [0, 1]
    assert pairs["diff"].tolist() == pytest.approx([0.1, 0.2])
    with pytest.raises(ValueError, match="student seeds"):
        stats.seed_accuracies([_rec(0, [0.5, 0.6], [1])], "soft")
    with pytest.raises(ValueError, match="two records"):
        stats.seed_accuracies([_rec(0, [0.5]), _rec(0, [0.6])], "soft")


def test_difference_summary_reports_the_cluster_interval_and_the_alternatives():
    a = [_rec(d, [0.5 + 0.01 * d + 0.01 * s for s in range(5)]) for d in range(3)]
    b = [_rec(d, [0.4 + 0.01 * s for s in range(5)]) for d in range(3)]
    summary = stats.difference_summary(stats.paired_differences(a, b), n_resamples=500)
    # per distill seed the difference is constant: 0.10, 0.11, 0.12
    half = T_0975_DF2 * 0.01 / math.sqrt(3)
    assert summary["mean_diff"] == pytest.approx(0.11)
    assert summary["ci_low"] == pytest.approx(0.11 - half)
    assert summary["ci_high"] == pytest.approx(0.11 + half)
    assert summary["n"] == 15 and summary["n_distill"] == 3 and summary["resolved"]
    assert summary["ci_method"] == stats.CLUSTER_T
    # the alternatives are narrower here: they are shown, not used
    assert summary["pairs_t_low"] > summary["ci_low"]
    assert summary["bootstrap_low"] > summary["ci_low"]


def test_a_difference_on_fewer_than_five_pairs_is_never_resolved():
    from tsgd_core.grid.stats import MIN_PAIRS, Interval, resolved

    assert resolved(0.1, 0.2) and resolved(0.1, 0.2, MIN_PAIRS)
    assert not resolved(0.1, 0.2, MIN_PAIRS - 1)
    assert not resolved(-0.1, 0.2, 15)
    # a degenerate (zero-width) interval from 2 pairs is not resolved
    assert not Interval(0.05, 0.05, 0.05, 2, 2, "t").resolved
    assert Interval(0.05, 0.01, 0.09, 15, 5, "t").resolved


def test_holm_adjusts_a_textbook_family_and_leaves_untested_entries_out():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x, then made monotone: 0.02 0.03 0.06 0.06
    adjusted = stats.holm_adjusted([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with_gap = stats.holm_adjusted([math.nan, 0.01, 0.02])
    assert math.isnan(with_gap[0]) and with_gap[1:] == pytest.approx([0.02, 0.02])
    assert stats.holm_adjusted([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm_adjusted([]) == []


def test_the_p_value_is_below_5_percent_exactly_where_the_interval_excludes_zero():
    rng = np.random.default_rng(0)
    for shift in np.linspace(0.0, 0.05, 11):
        groups = {d: list(shift + 0.03 * rng.standard_normal(3)) for d in range(5)}
        interval = stats.two_level_interval(groups)
        p = stats.two_level_p_value(groups)
        assert (p < 0.05) == (interval.low > 0 or interval.high < 0), (shift, p, interval)
    # one distill seed: the t-test over its student seeds, as the interval
    one = {0: [0.01, 0.02, 0.04, 0.03, 0.05]}
    assert stats.two_level_p_value(one) == pytest.approx(0.0132, abs=1e-4)  # t = 4.24, 4 df
    # identical differences: a zero-width interval, no test
    assert math.isnan(stats.two_level_p_value({0: [0.0] * 3, 1: [0.0] * 3}))
    assert math.isnan(stats.two_level_p_value({0: [0.1]}))
