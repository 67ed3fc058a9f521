"""Each sentence template rendered for a positive, a negative and an unresolved (or level) case:
the words must follow the numbers (direction, resolved / not resolved, floor)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tsgd_core.grid import stats
from tsgd_core.report import sentences, studies, tutorial_sentences


def diff(mean: float, low: float, high: float, n: int = 15) -> dict:
    """A paired difference in fractions, as the tables hold it."""
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "n": n, "n_distill": 3}


@pytest.mark.parametrize(
    ("difference", "words", "verdict"),
    [
        (diff(0.031, 0.012, 0.050), "3.1 points above", "resolved"),
        (diff(-0.109, -0.131, -0.086), "10.9 points below", "resolved"),
        (diff(0.020, -0.010, 0.050), "2.0 points above", "not resolved"),
        (diff(0.031, 0.012, 0.050, n=2), "3.1 points above", "not resolved"),  # too few pairs
        (diff(0.05, 0.05, 0.05), "5.0 points above", "not resolved"),  # zero width: identical
    ],
)
def test_paired_phrase_direction_and_verdict(difference, words, verdict):
    text = sentences.paired_phrase("TSGD", "Random", difference)
    assert text.startswith(f"TSGD is {words} Random: ")
    assert text.endswith(f", {verdict}")


def test_resolved_needs_pairs_and_width():
    assert stats.resolved(0.01, 0.05, 5)
    assert not stats.resolved(0.01, 0.05, 4), "fewer than MIN_PAIRS pairs"
    assert not stats.resolved(0.05, 0.05, 15), "a zero-width interval is no evidence"
    assert not stats.resolved(-0.01, 0.05, 15), "the interval includes 0"
    assert not stats.resolved(math.nan, 0.05, 15)


@pytest.mark.parametrize(
    ("first", "last", "word"),
    [(0.5, 0.4, "fell"), (0.4, 0.5, "rose"), (0.4001, 0.4004, "stayed at")],
)
def test_change_word_follows_the_printed_numbers(first, last, word):
    assert tutorial_sentences.change_word(first, last) == word
    phrase = tutorial_sentences.change_phrase("`loss_bn`", first, last)
    assert phrase.startswith(f"`loss_bn` {word} ")
    if word != "stayed at":
        assert phrase.endswith(f"from {first:.3f} to {last:.3f}")


def test_floor_only_when_no_method_is_below():
    above = tutorial_sentences.floor_sentence({"Random": 0.30, "TSGD": 0.35, "DM": 0.32}, "IPC 1")
    assert "Random is the floor" in above and "not a floor" not in above
    below = tutorial_sentences.floor_sentence({"Random": 0.30, "TSGD": 0.25, "DM": 0.32}, "IPC 1")
    assert "not a floor" in below and "TSGD (5.0 points below)" in below
    assert "DM" not in below.split(":", 2)[-1], "a method above Random is not listed below it"
    level = tutorial_sentences.floor_sentence({"Random": 0.30, "TSGD": 0.3004}, "IPC 1")
    assert "Random is the floor" in level, "a gap that prints as 0.0 is not below"


@pytest.mark.parametrize(
    ("acc", "words"),
    [
        (0.37, "17.0 points above chance"),
        (0.10, "10.0 points below chance"),
        (0.22, "within 5 points of chance"),
    ],
)
def test_chance_sentence(acc, words):
    text = tutorial_sentences.chance_sentence("soft labels", acc, 0.20)
    assert text == f"soft labels, {100 * acc:.1f} %, is {words} (20.0 %)"


def test_opposite_pairs_come_from_the_class_names():
    names = ["translate_right", "translate_left", "rotate_cw", "zoom_in", "circle_cw", "circle_ccw"]
    assert tutorial_sentences.opposite_pairs(names) == [
        ("translate_right", "translate_left"),
        ("circle_cw", "circle_ccw"),
    ]
    text = tutorial_sentences.opposite_pairs_sentence(names)
    assert "2 pairs" in text and "rotate" not in text and "zoom" not in text
    assert "no pair" in tutorial_sentences.opposite_pairs_sentence(["rotate_cw", "zoom_in"])


def test_dominant_layer_sentence_follows_the_terms():
    text = tutorial_sentences.dominant_layer_sentence(
        {"noise": [1.0, 3.0, 1.0], "real": [2.0, 1.0, 1.0]}
    )
    assert "noise: layer 1, not the first (3.000, 60 % of the total)" in text
    assert "real: the first layer (2.000, 50 % of the total)" in text


def test_difference_sentence_verbs():
    row = {**diff(0.03, 0.01, 0.05), "subject": "the filter", "verbs": ("helps", "hurts")}
    assert sentences.difference_sentence({**row, "resolved": True}, "at IPC 1").startswith(
        "the filter helps at IPC 1: +3.0 points"
    )
    neg = {**row, **diff(-0.03, -0.05, -0.01), "resolved": True}
    assert sentences.difference_sentence(neg, "at IPC 1").startswith("the filter hurts at IPC 1")
    open_ = {**row, **diff(0.01, -0.01, 0.03), "resolved": False}
    assert sentences.difference_sentence(open_, "at IPC 1").startswith("not resolved at IPC 1")


def test_an_unresolved_difference_says_why():
    assert stats.unresolved_reason(-0.01, 0.05, 15) == "the interval includes 0"
    assert stats.unresolved_reason(0.01, 0.05, 3) == "fewer than 5 pairs"
    assert stats.unresolved_reason(0.05, 0.05, 15).startswith("identical differences")
    assert stats.unresolved_reason(0.01, 0.05, 15) == ""


def verdict(ipc: int, mean: float, low: float, high: float, n: int = 15) -> dict:
    """One row of `tsgd_verdicts` (fractions): TSGD against a baseline 1 point below its mean."""
    resolved = stats.resolved(low, high, n)
    return {
        "ipc": ipc,
        "labels": "soft",
        "tsgd_mean": 0.40 + mean,
        "tsgd_std": 0.02,
        "best_baseline": "DM",
        "best_mean": 0.40,
        "best_std": 0.02,
        "gap": mean,
        **diff(mean, low, high, n),
        "resolved": resolved,
        "beats": resolved and mean > 0,
        "behind": resolved and mean < 0,
    }


VERDICTS = {
    "positive": verdict(1, 0.064, 0.041, 0.087),
    "negative": verdict(5, -0.094, -0.159, -0.029),
    "unresolved": verdict(10, 0.054, -0.004, 0.113),
    "too few pairs": verdict(20, 0.05, 0.03, 0.07, n=3),
}


@pytest.mark.parametrize(
    ("case", "outcome", "detail"),
    [
        (
            "positive",
            "beats it (resolved) at 1 of 1 IPC (IPC 1: +6.4 points [+4.1, +8.7])",
            "6.4 points above it",
        ),
        (
            "negative",
            "falls below it (resolved) at 1 of 1 IPC (IPC 5: -9.4 points [-15.9, -2.9])",
            "9.4 points below it",
        ),
        (
            "unresolved",
            "is not resolved from it at 1 of 1 IPC (IPC 10: +5.4 points [-0.4, +11.3])",
            "(the interval includes 0)",
        ),
        (
            "too few pairs",
            "is not resolved from it at 1 of 1 IPC (IPC 20: +5.0 points [+3.0, +7.0])",
            "(fewer than 5 pairs)",
        ),
    ],
)
def test_verdict_counts_only_resolved_wins_and_losses(case, outcome, detail):
    overall, line = sentences.verdict_sentences(pd.DataFrame([VERDICTS[case]]))
    assert outcome in overall
    assert detail in line
    resolved = case in ("positive", "negative")
    assert line.endswith(", resolved." if resolved else ")."), line
    if not resolved:
        assert "beats it (resolved) at 0 of 1 IPC;" in overall
        assert "falls below it (resolved) at 0 of 1 IPC." in overall


def test_verdict_overall_counts_each_outcome_separately():
    table = pd.DataFrame([VERDICTS[c] for c in ("positive", "negative", "unresolved")])
    overall = sentences.verdict_sentences(table)[0]
    assert "beats it (resolved) at 1 of 3 IPCs (IPC 1: " in overall
    assert "is not resolved from it at 1 of 3 IPCs (IPC 10: " in overall
    assert "falls below it (resolved) at 1 of 3 IPCs (IPC 5: " in overall
    assert "every IPC" not in overall


def test_verdict_without_shared_draws_says_not_paired():
    row = {**VERDICTS["positive"], "mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    overall, line = sentences.verdict_sentences(pd.DataFrame([{**row, "n": 0, "beats": False}]))
    assert "not resolved from it at 1 of 1 IPC (IPC 1: +6.4 points in mean, not paired)" in overall
    assert "TSGD is 6.4 points above it in mean, not paired" in line


@pytest.mark.parametrize(
    ("low", "high", "n", "verdict_", "words"),
    [
        (0.001, 0.004, 15, "converged", "under 1 point: converged at 1x"),
        (0.032, 0.102, 15, "not converged", "1 point or more: not converged at 1x"),
        (
            -0.123,
            0.112,
            15,
            "undecided",
            "the interval reaches both within and beyond 1 point: undecided at 1x",
        ),
        (0.032, 0.102, 3, "undecided", "fewer than 5 pairs: undecided at 1x"),
    ],
)
def test_convergence_verdict_reads_the_whole_interval(low, high, n, verdict_, words):
    assert studies.convergence_verdict(low, high, n) == verdict_
    row = {
        "method": "Random",
        "ipc": 5,
        "labels": "soft",
        "from_scale": 1.0,
        "to_scale": 2.0,
        **diff((low + high) / 2, low, high, n),
        "verdict": verdict_,
    }
    line = sentences.convergence_sentences(pd.DataFrame([row]))[0]
    assert line.endswith(f"({n} pairs): {words}.")


def test_each_question_is_one_short_tally(monkeypatch):
    rows = [  # (question, ipc, labels, recipe, mean_diff, ci_low, ci_high, resolved)
        ("filter", 1, "soft", "base", 0.021, 0.004, 0.038, True),
        ("filter", 5, "soft", "tsgfa", -0.031, -0.05, -0.012, True),
        ("filter", 5, "hard", "base", 0.01, -0.02, 0.04, False),
        ("tsgfa", 5, "soft", "tsgfa − base", 0.115, 0.098, 0.133, True),
    ]
    columns = ["question", "ipc", "labels", "recipe", "mean_diff", "ci_low", "ci_high", "resolved"]
    lines = sentences.question_sentences(pd.DataFrame(rows, columns=columns))
    assert lines == [
        "The filter (TSGD − SRe2L-style, same recipe): resolved up in 1/3 cells, down in 1; "
        "largest -3.1 [-5.0, -1.2] at IPC 5 soft tsgfa.",
        "TSGFA on TSGD's set: resolved up in 1/1 cells, down in 0; largest +11.5 [+9.8, +13.3] "
        "at IPC 5 soft tsgfa−base.",
    ]  # no line for a question without rows
    assert all(len(line.split()) <= 25 for line in lines)


def test_distillation_sentence_states_what_the_records_used(monkeypatch):
    nan = math.nan
    rows = [  # (method, ipc, lr_used, iterations_used) as the main-table records carry them
        ("DM", 1, 0.03, 100),
        ("DM", 5, 0.1, 400),
        ("Random", 1, nan, nan),
        ("SRe2L-style", 1, 0.0003, 100),
        ("SRe2L-style", 5, 0.0003, 100),
        ("TSGD", 5, 0.0003, 100),
        ("TSGD", 1, 0.0003, 100),
        ("TSGD + TSGFA", 1, 0.0003, 0),
        ("TSGD + TSGFA", 5, 0.003, 0),
    ]
    frame = pd.DataFrame(rows, columns=["row", "ipc", "lr_used", "iterations_used"])
    monkeypatch.setattr(sentences, "main_records", lambda df: frame)
    assert sentences.distillation_sentence(pd.DataFrame()) == (
        "Distillation (main table, as its records ran): DM lr 0.03, 100 iterations at IPC 1 and "
        "lr 0.1, 400 iterations at IPC 5; SRe2L-style and TSGD lr 0.0003, 100 iterations; "
        "TSGD + TSGFA 0 iterations (the start set)."
    )
    monkeypatch.setattr(sentences, "main_records", lambda df: frame[frame["row"] == "Random"])
    assert sentences.distillation_sentence(pd.DataFrame()) is None, "no record names its settings"
