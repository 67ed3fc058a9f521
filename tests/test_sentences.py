"""Each sentence template rendered for a positive, a negative and an unresolved (or level) case:
the words must follow the numbers (direction, resolved / not resolved, floor)."""

from __future__ import annotations

import math

import pytest

from tsgd_core.grid import stats
from tsgd_core.report import sentences


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
    assert sentences.change_word(first, last) == word
    phrase = sentences.change_phrase("`loss_bn`", first, last)
    assert phrase.startswith(f"`loss_bn` {word} ")
    if word != "stayed at":
        assert phrase.endswith(f"from {first:.3f} to {last:.3f}")


def test_floor_only_when_no_method_is_below():
    above = sentences.floor_sentence({"Random": 0.30, "TSGD": 0.35, "DM": 0.32}, "IPC 1")
    assert "Random is the floor" in above and "not a floor" not in above
    below = sentences.floor_sentence({"Random": 0.30, "TSGD": 0.25, "DM": 0.32}, "IPC 1")
    assert "not a floor" in below and "TSGD (5.0 points below)" in below
    assert "DM" not in below.split(":", 2)[-1], "a method above Random is not listed below it"
    level = sentences.floor_sentence({"Random": 0.30, "TSGD": 0.3004}, "IPC 1")
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
    text = sentences.chance_sentence("soft labels", acc, 0.20)
    assert text == f"soft labels, {100 * acc:.1f} %, is {words} (20.0 %)"


def test_opposite_pairs_come_from_the_class_names():
    names = ["translate_right", "translate_left", "rotate_cw", "zoom_in", "circle_cw", "circle_ccw"]
    assert sentences.opposite_pairs(names) == [
        ("translate_right", "translate_left"),
        ("circle_cw", "circle_ccw"),
    ]
    text = sentences.opposite_pairs_sentence(names)
    assert "2 pairs" in text and "rotate" not in text and "zoom" not in text
    assert "no pair" in sentences.opposite_pairs_sentence(["rotate_cw", "zoom_in"])


def test_dominant_layer_sentence_follows_the_terms():
    text = sentences.dominant_layer_sentence({"noise": [1.0, 3.0, 1.0], "real": [2.0, 1.0, 1.0]})
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
