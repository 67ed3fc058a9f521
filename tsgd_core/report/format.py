"""How the report writes a number: accuracies and differences in percent with their 95 %
intervals, the direction of a difference as printed, and the mark of a resolved difference.

Every table and sentence of the report formats through these helpers, so a number reads the
same wherever it appears."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..grid import stats
from .records import PERCENT

RESOLVED_MARK, UNRESOLVED_MARK = "✓", "–"  # a difference resolved or not, in tables


def in_points(column: Any) -> Any:
    """Fractions to percent (points) for a CSV, at full precision: a reader that rounds them
    once (README, the notebooks) prints what the report prints; 2 decimals rounded again to 1
    would not (12.853 -> 12.85 -> '12.8')."""
    return PERCENT * column.astype(float) + 0.0  # + 0.0: no "-0.0"


def format_number(value: Any) -> str:
    """Three significant digits, without exponents for the sizes seen here ('0.0123', '47.6', '1234')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def difference_span(diff: Mapping[str, Any], unit: str = " points") -> str:
    """'+2.1 points [+0.4, +3.8]': a difference (fractions in, points out) with its interval."""
    mean = f"{PERCENT * diff['mean_diff']:+.1f}{unit}"
    if math.isnan(diff["ci_low"]) or math.isnan(diff["ci_high"]):
        return f"{mean} (no interval: too few pairs)"
    return f"{mean} [{PERCENT * diff['ci_low']:+.1f}, {PERCENT * diff['ci_high']:+.1f}]"


def format_mean_std(mean: float, std: float, scale: float = 100.0, digits: int = 1) -> str:
    """'45.2 ± 3.1' (accuracy in %, by default); '—' when there is no number."""
    if mean is None or std is None or math.isnan(mean):
        return "—"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def format_ci(mean: float, low: float, high: float, scale: float = 100.0, digits: int = 1) -> str:
    """'45.2 [41.0, 49.4]' (mean and 95 % CI, in % by default); no brackets without an interval."""
    if mean is None or math.isnan(mean):
        return "—"
    text = f"{mean * scale:.{digits}f}"
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def direction(points: float) -> str:
    """'above', 'below' or 'level with' for a difference in points, read from the number as
    printed to 0.1 points (level with: |difference| < 0.05, which prints as 0.0)."""
    shown = float(f"{points:.1f}")
    return "above" if shown > 0 else "below" if shown < 0 else "level with"


def gap_words(points: float) -> str:
    """'3.1 points above', '0.4 points below' or 'level with': the sign lives in the word."""
    word = direction(points)
    return word if word == "level with" else f"{abs(points):.1f} points {word}"


def headline_resolved(diff: Mapping[str, Any]) -> bool:
    """A paired difference (fractions) is resolved in the headline when its interval excludes 0,
    it rests on at least stats.MIN_PAIRS pairs and it is not level (it prints as non-zero)."""
    return (
        stats.resolved(float(diff["ci_low"]), float(diff["ci_high"]), int(diff["n"]))
        and direction(PERCENT * float(diff["mean_diff"])) != "level with"
    )


def resolved_mark(diff: Mapping[str, Any]) -> str:
    """'✓' for a difference `headline_resolved` calls resolved, else '–'."""
    return RESOLVED_MARK if headline_resolved(diff) else UNRESOLVED_MARK
