"""The tutorials' sentences about their own numbers: a change, the floor, chance, the
benchmark's opposite class pairs and the BN layers, each read from the numbers it is printed
beside (so the notebooks' prose cannot contradict them). The report's sentences are in
`sentences`; both are reached as `report.<name>`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from .format import direction, gap_words
from .records import PERCENT
from .tables import RANDOM, main_results


def change_word(first: float, last: float, digits: int = 3) -> str:
    """'fell', 'rose' or 'stayed at' for a value going from `first` to `last`, read from the
    numbers as printed with `digits` decimals (so the word never contradicts them)."""
    a, b = round(float(first), digits), round(float(last), digits)
    return "fell" if b < a else "rose" if b > a else "stayed at"


def change_phrase(name: str, first: float, last: float, digits: int = 3) -> str:
    """'`loss_bn` fell from 0.412 to 0.388' (or 'stayed at 0.412')."""
    word = change_word(first, last, digits)
    if word == "stayed at":
        return f"{name} stayed at {first:.{digits}f}"
    return f"{name} {word} from {first:.{digits}f} to {last:.{digits}f}"


def floor_sentence(cell: Mapping[str, float], where: str, floor: str = RANDOM) -> str:
    """Whether `floor` (the start set) is a floor of the cell {method: mean accuracy}: 'floor'
    only when no method scores below it, else the methods below it with their gaps in points."""
    if floor not in cell:
        return f"{where}: {floor} is not in this cell."
    base = float(cell[floor])
    below = {
        m: PERCENT * (float(v) - base)
        for m, v in cell.items()
        if m != floor and direction(PERCENT * (float(v) - base)) == "below"
    }
    if not below:
        return f"{where}: {floor} is the floor, no method scores below it ({PERCENT * base:.1f} %)."
    named = ", ".join(f"{m} ({gap_words(gap)})" for m, gap in below.items())
    return (
        f"{where}: {floor} ({PERCENT * base:.1f} %) is not a floor: "
        f"{len(below)} method{'' if len(below) == 1 else 's'} score below it in mean, {named}."
    )


def floor_sentences(df: pd.DataFrame) -> list[str]:
    """`floor_sentence` for every IPC and label mode of the main table (test split)."""
    results = main_results(df)
    lines = []
    for (ipc, labels), cell in results.groupby(["ipc", "labels"], sort=True):
        means = dict(zip(cell["method"], cell["mean"], strict=True))
        lines.append(floor_sentence(means, f"IPC {ipc}, {labels} labels"))
    return lines


def chance_sentence(name: str, acc: float, chance: float, margin: float = 0.05) -> str:
    """'TSGD's best student, 37.0 %, is 17.0 points above chance (20.0 %)', and 'within 5 points
    of chance' only when it is (accuracies in fractions)."""
    gap = PERCENT * (float(acc) - float(chance))
    where = (
        f"within {PERCENT * margin:g} points of chance"
        if abs(gap) < PERCENT * margin
        else f"{gap_words(gap)} chance"
    )
    return f"{name}, {PERCENT * acc:.1f} %, is {where} ({PERCENT * chance:.1f} %)"


# opposite directions of one motion, as the motion benchmark's class names end
OPPOSITE_ENDINGS = (("right", "left"), ("up", "down"), ("cw", "ccw"), ("in", "out"))


def opposite_pairs(class_names: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs of classes that are opposite directions of one motion, among `class_names`."""
    names = set(class_names)
    pairs = []
    for name in class_names:
        stem, _, end = name.rpartition("_")
        for a, b in OPPOSITE_ENDINGS:
            if end == a and f"{stem}_{b}" in names:
                pairs.append((name, f"{stem}_{b}"))
    return pairs


def opposite_pairs_sentence(class_names: Sequence[str]) -> str:
    """Which opposite-direction pairs this profile's classes contain (computed from their names)."""
    pairs = opposite_pairs(class_names)
    if not pairs:
        return (
            "These classes contain no pair of opposite directions of one motion, so a teacher "
            "that ignored time has no such pair to confuse."
        )
    named = "; ".join(f"{a} and {b}" for a, b in pairs)
    return (
        f"This profile's classes contain {len(pairs)} pair{'' if len(pairs) == 1 else 's'} of "
        f"opposite directions of one motion ({named}): they share every appearance cue, so a "
        "teacher that ignored time would confuse exactly those."
    )


def dominant_layer_sentence(per_layer: Mapping[str, Sequence[float]]) -> str:
    """For each batch {name: BN loss term per layer}: the layer with the largest term and its
    share; says whether the first layer (0) dominates, from the numbers."""
    parts = []
    for name, terms in per_layer.items():
        values = [float(v) for v in terms]
        top = max(range(len(values)), key=values.__getitem__)
        share = values[top] / sum(values) if sum(values) > 0 else math.nan
        first = "the first layer" if top == 0 else f"layer {top}, not the first"
        parts.append(f"{name}: {first} ({values[top]:.3f}, {100 * share:.0f} % of the total)")
    return "Largest per-layer BN term (first_bn = 1): " + "; ".join(parts) + "."
