"""What `tsgd evaluate` prints: mean, 95 % interval and n, and comparisons read the right way."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tsgd_core.cli.commands import interval_text, label_comparison, print_results
from tsgd_core.grid.stats import mean_ci


def test_interval_text_gives_mean_t_interval_and_n():
    accs = [0.5, 0.6, 0.7]
    mean, low, high = mean_ci(accs)
    assert interval_text(accs) == (
        f"{100 * mean:.1f} % (95 % CI {100 * low:.1f} to {100 * high:.1f}, n = 3 student seeds)"
    )


def test_interval_text_keeps_the_interval_inside_0_and_100():
    text = interval_text([1.0, 1.0, 0.9])
    assert text.startswith("96.7 % (95 % CI") and text.endswith("to 100.0, n = 3 student seeds)")


def test_interval_text_with_one_seed_says_there_is_no_interval():
    assert interval_text([0.42]) == "42.0 % (no interval: n = 1 student seed)"


@pytest.mark.parametrize(
    ("soft", "hard", "expected"),
    [
        # positive, resolved: soft above hard on every one of 5 seeds
        (
            [0.8, 0.82, 0.81, 0.79, 0.8],
            [0.5, 0.52, 0.5, 0.49, 0.51],
            "soft labels are 30.0 points above hard labels",
        ),
        # negative, resolved
        (
            [0.5, 0.52, 0.5, 0.49, 0.51],
            [0.8, 0.82, 0.81, 0.79, 0.8],
            "soft labels are 30.0 points below hard labels",
        ),
    ],
)
def test_label_comparison_reads_a_resolved_difference_the_right_way_round(soft, hard, expected):
    line = label_comparison(soft, hard)
    assert expected in line and line.endswith(": resolved")


def test_label_comparison_with_too_few_pairs_is_not_resolved_even_when_clear():
    line = label_comparison([0.9, 0.91, 0.92], [0.1, 0.11, 0.1])
    assert "+80.7 points" in line and line.endswith("not resolved (fewer than 5 pairs)")


def test_label_comparison_whose_interval_holds_0_is_not_resolved():
    line = label_comparison([0.5, 0.7, 0.4, 0.6, 0.5], [0.6, 0.5, 0.5, 0.5, 0.6])
    assert line.endswith("not resolved (the interval includes 0)")
    assert "above" not in line and "below" not in line


def test_print_results_prints_every_label_mode_and_the_comparison(capsys):
    spec = SimpleNamespace(name=lambda: "tsgd_ipc1", eval_split="test", recipe="none")

    def result(accs):
        return SimpleNamespace(accs=accs, num_train=10, wall_s=[1.0] * 5, peak_mb=[10.0] * 5)

    soft, hard = [0.8, 0.82, 0.81, 0.79, 0.8], [0.5, 0.52, 0.5, 0.49, 0.51]
    print_results(spec, {"soft": result(soft), "hard": result(hard)}, 3.0)
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(f"  soft labels: {interval_text(soft)}")
    assert out[2].startswith(f"  hard labels: {interval_text(hard)}")
    assert out[3] == f"  {label_comparison(soft, hard)}"
