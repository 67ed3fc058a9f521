"""Every set under both student recipes: the parts table separates what the data adds from what
the training adds, and the report opens with the best set under each recipe."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_report import PNG_MAGIC, grid_records

from tsgd_core import report
from tsgd_core.grid.cells import build_grid
from tsgd_core.grid.planner import FULL_DATA_FOLDERS, plan
from tsgd_core.grid.spec import RECIPES, RunSpec

WINS = {1: 0.70, 2: 0.80}


def effect(parts: pd.DataFrame, comparison: str, ipc: int = 2, labels: str = "soft") -> pd.Series:
    hit = parts[
        (parts["comparison"] == comparison) & (parts["ipc"] == ipc) & (parts["labels"] == labels)
    ]
    assert len(hit) == 1, comparison
    return hit.iloc[0]


def test_the_main_group_runs_every_set_under_every_recipe():
    main = build_grid("smoke").main
    by_set = {}
    for spec in main:
        by_set.setdefault((spec.method, spec.ipc, spec.distill_seed), set()).add(spec.recipe)
    assert all(recipes == set(RECIPES) for recipes in by_set.values())
    assert {m for m, _, _ in by_set} == {
        "random", "herding", "kcenter", "salient", "dm", "sre2l", "tsgd"
    }  # fmt: skip


def test_the_full_data_cell_runs_under_each_recipe(tmp_path):
    steps = plan("smoke", tmp_path, tmp_path / "cache", "cpu", ["main"])
    full = [s for s in steps if "full_data" in s.params]
    assert [s.out_dir.name for s in full] == list(FULL_DATA_FOLDERS.values())
    assert [s.params.get("recipe", "base") for s in full] == list(FULL_DATA_FOLDERS)


def test_parts_pair_each_effect_within_or_across_recipes():
    # in these records TSGFA adds 5 points to TSGD's set and nothing to any other set
    parts = report.parts_results(grid_records(WINS, every_recipe=True))
    assert list(parts.columns) == report.PARTS_COLUMNS
    recipe = effect(parts, "Random + TSGFA − Random")
    assert recipe["effect"] == "recipe on the start set" and recipe["mean_diff"] == 0.0
    assert recipe["n"] == 15 and not recipe["resolved"]
    # recovery under each recipe: TSGD (0.80, 0.75 without TSGFA) minus Random (0.40)
    tsgfa = effect(parts, "TSGD + TSGFA − Random + TSGFA")
    base = effect(parts, "TSGD − Random")
    assert tsgfa["mean_diff"] == pytest.approx(0.40) and base["mean_diff"] == pytest.approx(0.35)
    assert tsgfa["recipe"] == "tsgfa" and base["recipe"] == "base" and tsgfa["resolved"]
    # the interaction: TSGFA helps TSGD's set by 5 points more than Random's, on every pair
    inter = effect(parts, "(TSGD + TSGFA − Random + TSGFA) − (TSGD − Random)")
    assert inter["mean_diff"] == pytest.approx(0.05) and inter["n"] == 15
    # the filter and the selections, each within one recipe
    assert effect(parts, "TSGD − SRe2L-style")["mean_diff"] == pytest.approx(0.15)
    assert effect(parts, "TSGD + TSGFA − SRe2L-style + TSGFA")["mean_diff"] == pytest.approx(0.20)
    selection = parts[parts["effect"] == "selection"]
    assert set(selection["recipe"]) == set(RECIPES) and len(selection) == 3 * 2 * 2 * 2
    table = report.parts_table(parts)
    assert effect(table, "TSGD − Random")["mean_diff"] == pytest.approx(35.0)
    assert set(table["resolved"]) <= {"yes", "no"}


def test_holm_counts_each_effect_as_one_family_of_tests():
    parts = report.parts_results(grid_records(WINS, every_recipe=True))
    # TSGD and the filter win by 35-45 points on every pair; the selections by 4-8 points with
    # 8 of their 24 cells resolved one by one, none after the family's correction
    tally = parts.groupby("effect")[["resolved", "resolved_holm"]].sum()
    assert tally.loc["recovery"].tolist() == [8, 8] and tally.loc["filter"].tolist() == [8, 8]
    assert tally.loc["selection"].tolist() == [8, 0]
    tested = parts[(parts["effect"] == "selection") & parts["p"].notna()]
    assert len(tested) == 8 and tested["p_holm"].between(0, 1).all()
    assert (tested["p_holm"] >= tested["p"]).all() and (tested["p"] < 0.05).all()
    # a zero-width difference (TSGFA adds nothing to Random here) is not a test
    recipe = effect(parts, "Random + TSGFA − Random")
    assert pd.isna(recipe["p"]) and pd.isna(recipe["p_holm"]) and not recipe["resolved_holm"]
    line = report.headline_sentences(parts)[-1]
    assert line == (
        "Holm's correction within each effect keeps 16 of the 24 resolved differences "
        "(recovery, filter)."
    )
    assert "✓✓" in report.parts_markdown(parts)
    table = report.parts_table(parts)
    assert set(table["resolved_holm"]) == {"yes", "no"}


def test_the_recipe_figure_puts_each_sets_two_recipes_side_by_side_in_table_order(tmp_path):
    records = grid_records(WINS, every_recipe=True)
    records = records.sort_values("method", ascending=False)  # records come in any order
    fig = report.recipe_figure(records, tmp_path / "recipes.png")
    assert (tmp_path / "recipes.png").read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names[0] == "Random" and names[-1] == "TSGD", names  # the tables' order
    hatched = [bar for bar in ax.patches if bar.get_hatch() == "//"]
    assert len(hatched) == len(names) == len(ax.patches) // 2, "each set under both recipes"


def test_parts_leave_out_what_was_not_run():
    parts = report.parts_results(grid_records(WINS))  # no baseline under TSGFA but Random
    assert "SRe2L-style + TSGFA" not in " ".join(parts["comparison"])
    assert "(TSGD + TSGFA − Random + TSGFA) − (TSGD − Random)" in set(parts["comparison"])
    assert "No effect" in report.parts_markdown(parts.iloc[0:0])


def test_the_headline_table_and_its_short_sentences():
    df = grid_records(WINS, every_recipe=True)
    parts = report.parts_results(df)
    table = report.headline_table(df, parts)
    assert list(table.columns) == report.HEADLINE_COLUMNS
    assert len(table) == 2 * 2 * 2  # IPCs x label modes x recipes
    tsgfa = table[(table["ipc"] == 2) & (table["labels"] == "soft") & (table["recipe"] == "tsgfa")]
    row = tsgfa.iloc[0]
    assert row["best set"] == "TSGD" and row["accuracy"].startswith("80.0 [")
    assert (
        row["its gain over Random"].startswith("+40.0 [") and row["its gain over Random"][-1] == "✓"
    )
    lines = report.headline_sentences(parts)
    assert len(lines) == 5 and all(len(line.split()) <= 25 for line in lines), lines
    assert lines[0].startswith("TSGD minus its start set, same recipe: resolved up in 8/8 cells")
    assert lines[1].startswith("TSGFA on Random's set: resolved up in 0/4 cells, down in 0")


def test_the_report_opens_with_the_same_recipe_table(tmp_path):
    df = grid_records(WINS, every_recipe=True)
    full = {"soft": (0.9, 0.01), "hard": (0.85, 0.02)}
    files = report.write_report(
        df, tmp_path, profile="smoke", command="x", full={"base": full, "tsgfa": full}
    )
    readme = files["readme"].read_text()
    assert readme.index("| best set ") < 600, "the first table within the opening lines"
    assert files["recipes"].read_bytes().startswith(PNG_MAGIC)
    parts = pd.read_csv(tmp_path / "parts.csv")
    assert set(parts["effect"]) == {
        "recipe on the start set", "recovery", "filter", "selection", "interaction"
    }  # fmt: skip
    main = pd.read_csv(tmp_path / "main_table.csv")
    assert set(main["recipe"]) == set(RECIPES)
    counts = main[main["method"] != report.FULL_DATA].groupby(["method", "ipc", "labels"])
    assert (counts["recipe"].nunique() == 2).all(), "every set under both recipes"
    full_rows = main[main["method"] == report.FULL_DATA]
    assert set(full_rows["recipe"]) == set(RECIPES)
    # hard-label recovery against the full data of the same recipe
    tsgd = main[(main["method"] == "TSGD") & (main["labels"] == "hard") & (main["ipc"] == 2)]
    assert sorted(tsgd["hard_label_recovery"]) == pytest.approx([5.0, 10.0])


def opening_of(readme: str) -> tuple[list[str], list[str]]:
    """The tables (markdown blocks) and the sentences (bullets) before 'Generated by'."""
    opening = readme[: readme.index("Generated by")]
    tables = [block for block in opening.split("\n\n") if block.startswith("|")]
    return tables, [line[2:] for line in opening.splitlines() if line.startswith("- ")]


def test_the_report_opens_with_its_two_tables_and_short_sentences(tmp_path):
    df = grid_records(WINS, every_recipe=True)
    text = report.readme_text(df, profile="smoke", command="x", figures={}, base=tmp_path / "s")
    first_table = next(i for i, line in enumerate(text.splitlines()) if line.startswith("|"))
    assert first_table < 15, "the first table within the README's first 15 lines"
    tables, sentences = opening_of(text)
    assert len(tables) == 2 and "| best set " in tables[0] and tables[1].startswith("| Method ")
    # every gain over the start set carries its mark: ✓ resolved, – not
    cells = [c.strip() for row in tables[1].splitlines()[2:] for c in row.split("|")[2:-1]]
    assert cells and all(c == "—" or c.endswith((" ✓", " –")) for c in cells), cells
    # TSGD + TSGFA 80 % against Random + TSGFA 40 % at IPC 2, soft: +40 points on every draw
    tsgd = next(r for r in tables[1].splitlines() if r.startswith("| TSGD + TSGFA "))
    assert "+40.0 [" in tsgd and "✓" in tsgd
    # the findings, one short sentence each, then the ladder's
    assert len(sentences) == 6 and all(len(s.split()) <= 25 for s in sentences), sentences
    assert sentences[-2].startswith("Holm's correction within each effect keeps 16 of the 24")
    assert sentences[-1] == "The resolution ladder has not been run (`./run_all.sh --ladder`)."
    # no per-cell prose: the paired comparisons and verdicts in a sentence per question
    assert "**IPC 1, soft labels.**" not in text and "Not resolved at IPC" not in text
    assert text.count("Salient windows is ") == 0


def test_the_committed_report_opens_with_its_tables():
    """reports/default/README.md as generated from its records: the first table within 15
    lines, every sentence of the opening 25 words or fewer."""
    readme = Path(__file__).resolve().parents[1] / "reports" / "default" / "README.md"
    text = readme.read_text()
    first_table = next(i for i, line in enumerate(text.splitlines()) if line.startswith("|"))
    assert first_table < 15
    tables, sentences = opening_of(text)
    assert len(tables) == 2 and sentences
    assert all(len(s.split()) <= 25 for s in sentences), sentences


def test_a_random_perturbation_of_recoverys_size():
    from tsgd_core.grid.experiments import perturb_like

    start = torch.rand(4, 3, 2, 4, 4) * 0.5 + 0.25  # room on both sides: no clipping
    moved = start.clone()
    moved[1] += 0.01  # recovery moved clip 1 only
    out = perturb_like(start, moved, seed=3)
    change = (out - start).flatten(1).norm(dim=1)
    assert change[1] == pytest.approx(float((moved - start)[1].norm()), rel=1e-5)
    assert torch.equal(out[0], start[0]) and torch.equal(out, perturb_like(start, moved, seed=3))
    direction = (out - start)[1].flatten()
    assert torch.cosine_similarity(direction, (moved - start)[1].flatten(), dim=0) < 0.5
    assert not torch.equal(out, perturb_like(start, moved, seed=4))


def test_the_controls_run_under_tsgfa_too_with_the_perturbation():
    controls = build_grid("smoke").controls
    tsgfa = [s for s in controls if s.method == "tsgd" and s.recipe == "tsgfa"]
    assert {(s.train_pixels, s.label_pixels) for s in tsgfa} >= {
        ("set", "start"), ("start", "set"), ("perturbed", "perturbed")
    }  # fmt: skip
    rec = {**asdict(tsgfa[0]), "train_pixels": "perturbed", "label_pixels": "perturbed"}
    assert report.control_label(rec) == "randomly perturbed start pixels with their own labels"


@pytest.mark.slow
def test_students_train_on_the_perturbed_start_pixels(tmp_path):
    from tsgd_core.grid import experiments

    spec = RunSpec(
        method="sre2l", ipc=1, profile="smoke", labels=("soft",), n_students=1,
        train_pixels="perturbed", label_pixels="perturbed",
    )  # fmt: skip
    _, rec = experiments.run(spec, cache_dir=tmp_path, device="cpu", progress=False)
    plain = replace(spec, train_pixels="set", label_pixels="set")
    assert spec.distill_key() == plain.distill_key() and spec.eval_key() != plain.eval_key()
    assert 0.0 <= rec["acc_soft_mean"] <= 1.0 and len(rec["acc_soft_seeds"]) == 1


def test_confidence_stats_of_a_teachers_views():
    from tsgd_core.training.relabel import confidence_stats

    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    out = confidence_stats(probs, torch.tensor([0, 1]))
    assert out["top_prob"] == pytest.approx(0.75)
    assert out["entropy"] == pytest.approx(0.5 * math.log(2))
    assert out["own_class_prob"] == pytest.approx(0.75)


@pytest.mark.slow
def test_the_recovery_probe_pairs_start_and_recovered_views_by_draw(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import recovery_probe

    argv = ["--profile", "smoke", "--ipc", "1", "--cache", str(tmp_path), "--views", "2"]
    assert recovery_probe.main([*argv, "--out", str(tmp_path / "probe")]) == 0
    table = pd.read_csv(tmp_path / "probe.csv")
    assert set(table["recipe"]) == set(RECIPES) and set(table["measure"]) == set(
        recovery_probe.MEASURES
    )
    assert (table["draws"] == 2).all()  # the smoke profile's two draws
    assert table["diff"].to_numpy() == pytest.approx(
        (table["recovered"] - table["start"]).to_numpy()
    )
    assert (tmp_path / "probe.md").read_text().startswith("# Teacher's view")


def test_a_cell_recorded_before_the_recipe_field_is_still_done(tmp_path):
    """A direct step is done when its record's spec evaluates the same cell, in whatever spelling
    (a step.json written before `student_augment` existed spelled TSGD's base recipe tsgfa=False)."""
    import json

    from tsgd_core.grid.planner import DIRECT_PARAMS, Step, direct_done, plain, spec_params

    spec = RunSpec(method="tsgd", ipc=1, profile="smoke", student_augment="base")
    params = {"profile": "smoke", "cache_dir": "here", "spec": plain(spec_params(spec))}
    step = Step("controls/x", "", tmp_path, params, direct=True)
    old = {k: v for k, v in params["spec"].items() if k != "student_augment"}
    old["tsgfa"] = False
    (tmp_path / "record.json").write_text("{}")
    (tmp_path / DIRECT_PARAMS).write_text(json.dumps({**params, "cache_dir": "there", "spec": old}))
    assert direct_done(step)
    other = {**old, "tsgfa": True}  # TSGD under TSGFA: another cell
    (tmp_path / DIRECT_PARAMS).write_text(json.dumps({**params, "spec": other}))
    assert not direct_done(step)
    (tmp_path / DIRECT_PARAMS).write_text(json.dumps({**params, "spec": {**old, "nope": 1}}))
    assert not direct_done(step), "a spec this checkout cannot read is not the same cell"
