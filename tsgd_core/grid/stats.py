"""Confidence intervals for accuracies and for paired differences between methods.

The design is two-level: every configuration is distilled with several distillation seeds
(the draw of the start set and the optimisation), and every distilled set trains several
students (student seeds). Two methods are compared *paired*: the same distillation seed (the
random baseline with distillation seed d is the very start set of the optimised methods with
seed d) and the same student seed (the same student initialisation and batch order). Each pair
gives a difference d_ij = acc_A(i, j) - acc_B(i, j) for distillation seed i and student seed j.

Model: d_ij = mu + a_i + e_ij, with a_i the set-to-set effect (variance s_D^2) and e_ij the
student noise (variance s_S^2). The quantity of interest is mu, and the estimate is the mean of
the per-distillation-seed means (every distillation seed weighs the same).

Which interval is reported (`two_level_interval`, the `ci_low` / `ci_high` of every table):

* With >= 2 distillation seeds: the Student-t interval of the per-distillation-seed means
  (n_distill - 1 degrees of freedom). For a balanced design under the normal random-effects
  model above, the variance of a distillation-seed mean is s_D^2 + s_S^2 / n_student, which is
  exactly what the spread of those means estimates, so this interval has its nominal coverage
  whatever the split between s_D and s_S. It is wide with 3 distillation seeds
  (t_0.975,2 = 4.30), which makes "resolved" a high bar; that is the honest price of few sets.
* The alternatives are computed and reported next to it, but not used for decisions:
  the t-interval over all pairs treats the n_distill x n_student pairs as independent and is too
  narrow whenever s_D > 0 (student seeds of one set share that set's luck); the two-level
  (hierarchical) percentile bootstrap (resample distillation seeds, then student seeds within
  each) handles the clustering but, with 3 clusters, has only 10 distinct cluster draws and
  underestimates the between-set variance by a factor (n-1)/n, so it is too narrow as well.
* With a single distillation seed: the t-interval over student seeds, labelled as such
  (`method = "t over student seeds"`): it covers student noise only, not set-to-set variance.
* With fewer than 2 values: no interval (NaN bounds), never resolved.

A difference is *resolved* when its reported interval excludes 0, rests on at least MIN_PAIRS
pairs and has a non-zero width (identical differences give a zero-width interval, no evidence).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CLUSTER_T = "t over distill-seed means"
STUDENT_T = "t over student seeds"
NO_INTERVAL = "too few values"
PAIR_COLUMNS = ["distill_seed", "student_seed", "a", "b", "diff"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval and what it rests on."""

    mean: float
    low: float
    high: float
    n: int  # number of values (pairs)
    n_distill: int  # number of distillation seeds (clusters)
    method: str  # which interval: CLUSTER_T, STUDENT_T or NO_INTERVAL

    @property
    def resolved(self) -> bool:
        return resolved(self.low, self.high, self.n)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def mean_ci(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean; NaN bounds for fewer than 2 values."""
    _check_level(level)
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1))
    half /= math.sqrt(x.size)
    return mean, mean - half, mean + half


# fewer pairs than this never resolve a difference: with 2 pairs a t-interval can be
# degenerate (zero width) and with 3 or 4 it rests on 1 to 3 degrees of freedom
MIN_PAIRS = 5

# an interval narrower than this (in the units of its bounds: fractions or points) has zero
# width: the differences were identical (up to rounding), which a t-interval cannot weigh
ZERO_WIDTH = 1e-9


def resolved(ci_low: float, ci_high: float, n: int | None = None) -> bool:
    """True when the interval excludes 0, has a non-zero width and, where `n` (the pairs) is
    given, rests on at least MIN_PAIRS pairs (a NaN bound is never resolved)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return False
    if n is not None and n < MIN_PAIRS:
        return False
    if ci_high - ci_low <= ZERO_WIDTH:
        return False
    return ci_low > 0 or ci_high < 0


def unresolved_reason(ci_low: float, ci_high: float, n: int | None = None) -> str:
    """Why `resolved` says no, in words for a report sentence ('' when it is resolved)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "no interval"
    if n is not None and n < MIN_PAIRS:
        return f"fewer than {MIN_PAIRS} pairs"
    if ci_high - ci_low <= ZERO_WIDTH:
        return "identical differences (a zero-width interval is not evidence)"
    if ci_low > 0 or ci_high < 0:
        return ""
    return "the interval includes 0"


def _clusters(values_by_distill: Mapping[Any, Sequence[float]]) -> list[np.ndarray]:
    clusters = [np.asarray(list(v), dtype=float) for v in values_by_distill.values()]
    return [c for c in clusters if c.size]


def hierarchical_bootstrap_ci(
    values_by_distill: Mapping[Any, Sequence[float]],
    level: float = LEVEL,
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile interval of the mean of distill-seed means under a two-level bootstrap.

    Each resample draws distillation seeds with replacement, then, independently for every
    drawn seed, student seeds with replacement within it. Deterministic for a given `seed`.
    """
    _check_level(level)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    clusters = _clusters(values_by_distill)
    if not clusters or sum(c.size for c in clusters) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    n_c = len(clusters)
    picks = rng.integers(0, n_c, size=(n_resamples, n_c))
    total = np.zeros(n_resamples)
    for position in range(n_c):
        # a fresh within-seed resample of every cluster; keep the one this position picked
        inner = np.stack(
            [c[rng.integers(0, c.size, size=(n_resamples, c.size))].mean(axis=1) for c in clusters]
        )
        total += inner[picks[:, position], np.arange(n_resamples)]
    means = total / n_c
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def two_level_interval(
    values_by_distill: Mapping[Any, Sequence[float]], level: float = LEVEL
) -> Interval:
    """The reported interval of a two-level sample {distill seed: [value per student seed]}.

    See the module docstring: the t-interval of the distill-seed means with >= 2 distillation
    seeds, the t-interval over student seeds with one.
    """
    clusters = _clusters(values_by_distill)
    n = sum(c.size for c in clusters)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0, NO_INTERVAL)
    if len(clusters) >= 2:
        mean, low, high = mean_ci([c.mean() for c in clusters], level)
        return Interval(mean, low, high, n, len(clusters), CLUSTER_T)
    mean, low, high = mean_ci(clusters[0], level)
    method = STUDENT_T if n >= 2 else NO_INTERVAL
    return Interval(mean, low, high, n, 1, method)


def two_level_p_value(values_by_distill: Mapping[Any, Sequence[float]]) -> float:
    """The two-sided p-value of "the mean is 0" by the t-test that `two_level_interval` inverts
    (over distill-seed means, or over student seeds with one distill seed): below 1 - LEVEL
    exactly when that interval excludes 0. NaN where it has no interval or a zero width."""
    interval = two_level_interval(values_by_distill)
    if math.isnan(interval.low) or interval.high - interval.low <= ZERO_WIDTH:
        return math.nan
    clusters = _clusters(values_by_distill)
    values = [c.mean() for c in clusters] if len(clusters) >= 2 else clusters[0]
    return float(_scipy_stats.ttest_1samp(values, 0.0).pvalue)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values of one family of tests, in the given order: a test
    rejects at family-wise error rate alpha when its adjusted p is below alpha. NaN entries (no
    test) stay NaN and are left out of the family. Written here: scipy has no Holm."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def seed_accuracies(rows: Any, labels: str) -> dict[tuple[int, int], float]:
    """{(distill_seed, student_seed): accuracy} of records of one configuration, label mode `labels`.

    A record lists one accuracy per student seed in `acc_<labels>_seeds`, aligned with
    `student_seeds` (records without that field are aligned by position: 0, 1, 2, ...).
    """
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    out: dict[tuple[int, int], float] = {}
    for rec in records:
        accs = rec.get(f"acc_{labels}_seeds")
        if not isinstance(accs, list | tuple | np.ndarray) or len(accs) == 0:
            continue
        students = rec.get("student_seeds")
        if not isinstance(students, list | tuple | np.ndarray):
            students = range(len(accs))
        if len(students) != len(accs):
            raise ValueError(
                f"record {rec.get('name', '?')}: {len(accs)} accuracies for {len(students)} "
                "student seeds; the record is damaged: evaluate the run again"
            )
        distill = distill_seed_of(rec)
        for student, acc in zip(students, accs, strict=True):
            key = (distill, int(student))
            if key in out:
                raise ValueError(
                    f"two records hold distill seed {key[0]}, student seed {key[1]}: pool one "
                    "configuration at a time"
                )
            out[key] = float(acc)
    return out


def distill_seed_of(record: Mapping[str, Any]) -> int:
    """The record's distillation seed (0 when the record predates the field)."""
    value = record.get("distill_seed")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    return int(value)


def by_distill_seed(values: Mapping[tuple[int, int], float]) -> dict[int, list[float]]:
    """{(distill, student): value} -> {distill: [values in student-seed order]}."""
    out: dict[int, list[float]] = {}
    for (distill, _student), value in sorted(values.items()):
        out.setdefault(distill, []).append(value)
    return out


def paired_differences(a_rows: Any, b_rows: Any, labels: str = "soft") -> pd.DataFrame:
    """One row per (distill_seed, student_seed) present in both: accuracies a, b and diff = a - b.

    `a_rows`, `b_rows`: the records (dicts or a DataFrame) of two configurations, one record per
    distillation seed each. Pairs present on one side only are left out.
    """
    a, b = seed_accuracies(a_rows, labels), seed_accuracies(b_rows, labels)
    common = sorted(set(a) & set(b))
    rows = [(d, s, a[(d, s)], b[(d, s)], a[(d, s)] - b[(d, s)]) for d, s in common]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def difference_summary(
    pairs: pd.DataFrame,
    level: float = LEVEL,
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Mean paired difference with the reported interval and the two alternatives beside it."""
    groups = {d: list(g["diff"]) for d, g in pairs.groupby("distill_seed", sort=True)}
    reported = two_level_interval(groups, level)
    _, t_low, t_high = mean_ci(pairs["diff"], level)
    boot_low, boot_high = hierarchical_bootstrap_ci(
        groups, level, n_resamples=n_resamples, seed=seed
    )
    return {
        "mean_diff": reported.mean,
        "ci_low": reported.low,
        "ci_high": reported.high,
        "n": reported.n,
        "n_distill": reported.n_distill,
        "resolved": reported.resolved,
        "p": two_level_p_value(groups),
        "ci_method": reported.method,
        "pairs_t_low": t_low,
        "pairs_t_high": t_high,
        "bootstrap_low": boot_low,
        "bootstrap_high": boot_high,
    }


def clip_accuracy_interval(low: float, high: float, top: float = 1.0) -> tuple[float, float]:
    """An accuracy interval kept inside [0, top] (fractions: 1, percent: 100); NaN stays NaN.

    Only accuracies: a difference between two accuracies can be negative and is never clipped.
    """

    def clip(value: float) -> float:
        value = float(value)
        return value if math.isnan(value) else min(max(value, 0.0), top)

    return clip(low), clip(high)
