"""README.md, docs/ and the notebooks' prose: every relative link resolves, every anchor exists;
the README is short, leads with its figure, results table and two commands, and its results
block is what scripts/readme_results.py renders from the committed report.

The links checked are those of README.md, docs/*.md and of the notebooks' markdown cells: markdown links
and images `[text](target)` / `![alt](target)` and HTML `href` / `src` attributes, outside code
spans and fenced code. A target with a scheme (https:, mailto:) is not followed. A relative
target must name an existing file (relative to the file that links it; for a notebook, to
notebooks/); a `#anchor` into a markdown file must be an explicit `<a id="...">` there or the
GitHub slug of one of its headings.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
GLOSSARY, REFERENCES, METHOD = DOCS / "glossary.md", DOCS / "references.md", DOCS / "METHOD.md"

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
ANCHOR_ID = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']""")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

# the entries the notebooks and docs rely on (issue 21)
GLOSSARY_ENTRIES = [
    "ipc",
    "start-set",
    "soft-label",
    "temperature-tau",
    "bn-matching",
    "squeeze-recover-relabel",
    "herding",
    "k-center",
    "dm",
    "mtt",
    "tsgf",
    "tsgfo",
    "tsgfa",
    "salient-windows",
    "one-frame-control",
    "paired-difference",
    "95-interval",
    "resolved",
    "draw",
    "student-seed",
    "validation-vs-test-split",
    "tuning-stage",
    "resolution-ladder",
    "hard-label-recovery",
    "gain-over-the-start-set",
]
REFERENCE_ENTRIES = [
    "tsgd",
    "sre2l",
    "rded",
    "dm",
    "mtt",
    "dd-ranking",
    "dancing",
    "fkd",
    "herding",
    "k-center",
    "ucf101",
    "hmdb51",
    "kinetics",
    "ssv2",
]


def prose(text: str) -> str:
    """Markdown without fenced blocks and code spans (a link inside them is not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return MD_LINK.findall(body) + HTML_LINK.findall(body)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = set(ANCHOR_ID.findall(text))
    found |= {github_slug(h) for h in HEADING.findall(FENCE.sub("", text))}
    return found


def markdown_sources() -> list[tuple[str, Path, str]]:
    """(label, folder relative links start from, markdown) for docs/*.md and notebook cells."""
    nbformat = pytest.importorskip("nbformat")
    pages = [README, *DOCS_MD]
    sources = [(p.relative_to(ROOT).as_posix(), p.parent, p.read_text("utf-8")) for p in pages]
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                sources.append((f"{nb_path.name} cell {i}", nb_path.parent, cell.source))
    return sources


DOCS_MD = sorted(DOCS.glob("*.md"))


def test_docs_exist():
    assert {p.name for p in DOCS_MD} >= {"METHOD.md", "glossary.md", "references.md"}


def test_every_relative_link_resolves_and_every_anchor_exists():
    broken = []
    checked = 0
    for label, base, text in markdown_sources():
        own = None  # the linking file's anchors, for '#anchor' links inside docs/*.md
        for target in links(text):
            if SCHEME.match(target):
                continue
            path_part, _, fragment = target.partition("#")
            if not path_part:
                if label.endswith(".md"):
                    own = own if own is not None else anchors(ROOT / label)
                    if fragment not in own:
                        broken.append(f"{label}: #{fragment} is no anchor of this file")
                    checked += 1
                continue
            dest = (base / path_part).resolve()
            checked += 1
            if not dest.exists():
                broken.append(f"{label}: {target} -> no file {dest}")
                continue
            if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{label}: {target} -> no anchor #{fragment} in {dest.name}")
    assert checked > 50, f"only {checked} relative links found: is the link pattern right?"
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("path", "entries"), [(GLOSSARY, GLOSSARY_ENTRIES), (REFERENCES, REFERENCE_ENTRIES)]
)
def test_every_entry_has_its_anchor(path, entries):
    missing = sorted(set(entries) - anchors(path))
    assert not missing, f"{path.name} lacks anchors {missing}"


def test_each_notebook_links_glossary_and_references_near_the_top():
    nbformat = pytest.importorskip("nbformat")
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        top = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
        line = next((x for x in top.splitlines() if "Words and references" in x), "")
        for target in ("../docs/glossary.md", "../docs/references.md"):
            assert f"]({target})" in line, (
                f"{nb_path.name}: no 'Words and references' link to {target}"
            )


def test_every_notebook_links_the_glossary_where_ideas_appear():
    """Beyond the 'Words and references' line: at least two links to glossary entries."""
    nbformat = pytest.importorskip("nbformat")
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        entries = set(re.findall(r"\]\(\.\./docs/glossary\.md#([\w-]+)\)", prose(text)))
        assert len(entries) >= 2, f"{nb_path.name} links {sorted(entries)} only"


def test_the_method_is_cited_from_the_repository():
    """Nothing in the README, notebooks, docs or code cites the method file outside the
    repository."""
    old = "shared/" + "METHOD"
    places = [*NOTEBOOKS.glob("*.ipynb"), *DOCS.rglob("*.md"), *(ROOT / "tsgd_core").rglob("*.py")]
    places += [*(ROOT / "scripts").glob("*"), ROOT / "run_all.sh", ROOT / "run_tests.sh"]
    places += [ROOT / "README.md"]
    citing = [
        p.relative_to(ROOT).as_posix()
        for p in places
        if p.is_file() and old in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert not citing, f"cite docs/METHOD.md instead in {citing}"
    assert METHOD.is_file()


def test_method_maps_the_sre2l_stages_onto_modules():
    text = METHOD.read_text(encoding="utf-8")
    section = text.split("Where each stage lives", 1)[1]
    for module in (
        "training/teacher.py",
        "methods/distill.py",
        "methods/dm.py",
        "methods/selection.py",
        "methods/salient.py",
        "training/relabel.py",
        "build_relabel_plan",
        "training/evaluate.py",
        "grid/tuning.py",
        "grid/ladder.py",
        "report/",
    ):
        assert module in section, module
        if module.endswith((".py", "/")):
            assert (ROOT / "tsgd_core" / module).exists(), module


# ----------------------------------------------------------------------------- README


def readme_results():
    """scripts/readme_results.py as a module (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "readme_results", ROOT / "scripts" / "readme_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_leads_with_figure_table_and_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    top = "\n".join(lines[:40])
    assert re.search(r"!\[[^\]]*\]\([^)]*\.png\)", top), "a figure in the first 40 lines"
    assert "| IPC 1 |" in top and "<!-- results:end -->" in top, "the results table, whole"
    for command in ("./run_all.sh", "./run_tests.sh"):
        assert re.search(rf"^{re.escape(command)}\b", top, re.MULTILINE), command


def test_readme_results_block_is_rendered_from_the_committed_report():
    module = readme_results()
    committed = ROOT / "reports" / "default" / "main_table.csv"
    block = module.current_block(README.read_text(encoding="utf-8"))
    assert block == module.render(committed, ROOT), "run python scripts/readme_results.py"
    assert module.main(["--check"]) == 0


def write_table(path: Path, rows: list[dict]) -> Path:
    columns = ["method", "recipe", "ipc", "labels", "mean", "std", "n", "ci_low", "ci_high"]
    columns += ["n_distill", "gain_vs_start", "gain_ci_low", "gain_ci_high", "hard_label_recovery"]
    if "recipe" not in rows[0]:
        columns.remove("recipe")
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(method, ipc, labels, mean, gain=None, low=None, high=None, recipe=None, n=15):
    out = {"method": method, "ipc": ipc, "labels": labels, "mean": mean, "n": n}
    out |= {"gain_vs_start": gain, "gain_ci_low": low, "gain_ci_high": high}
    out = {k: ("" if v is None else v) for k, v in out.items()}
    return out if recipe is None else {**out, "recipe": recipe}


def test_results_block_pairs_each_set_with_the_start_set_of_its_own_recipe(tmp_path):
    module = readme_results()
    table = write_table(
        tmp_path / "main_table.csv",
        [
            row("Random", 5, "soft", 41.04, recipe="base"),
            row("TSGD", 5, "soft", 38.44, -2.6, -5.83, 0.5, recipe="base"),
            row("Random", 5, "soft", 45.0, recipe="tsgfa"),
            row("TSGD", 5, "soft", 49.9, 4.9, 1.2, 8.6, recipe="tsgfa"),
            row("Full data (upper bound)", "", "soft", 89.7, recipe="base"),
            row("Full data (upper bound)", "", "hard", 86.9, recipe="base"),
        ],
    )
    block = module.render(table, tmp_path)
    assert "| set | labels | IPC 5 | IPC 5 + TSGFA |" in block, "the recipes side by side"
    # the base recipe's gain is not resolved: plain; the TSGFA one is: bold
    assert "| TSGD | soft | 38.4 (-2.6 [-5.8, +0.5]) | 49.9 (**+4.9** [+1.2, +8.6]) |" in block
    assert "| Random | soft | 41.0 | 45.0 |" in block, "the start sets: accuracy alone"
    assert "Full data (upper bound): 89.7 % soft, 86.9 % hard." in block
    assert "†" not in block and "predates" not in block


def test_results_block_of_a_table_before_the_recipe_axis_shows_no_cross_recipe_gain(tmp_path):
    module = readme_results()
    table = write_table(
        tmp_path / "main_table.csv",
        [
            row("Random", 5, "soft", 41.04),
            row("TSGD w/o TSGFA", 5, "soft", 38.44, -2.6, -5.83, 0.5),
            row("TSGD", 5, "soft", 49.9, 8.9, 5.6, 12.1),  # over the base recipe's Random
            row("DM", 5, "soft", 44.5, 3.5, 0.6, 7.5, n=4),  # too few pairs to resolve
        ],
    )
    block = module.render(table, tmp_path)
    assert "| set | labels | IPC 5 | IPC 5 + TSGFA † |" in block, "the TSGFA column, marked"
    # the base-recipe TSGD with its gain, then TSGD + TSGFA's accuracy alone
    assert "| TSGD | soft | 38.4 (-2.6 [-5.8, +0.5]) | 49.9 |" in block
    assert "+8.9" not in block
    assert "| DM | soft | 44.5 (+3.5 [+0.6, +7.5]) | – |" in block, "4 pairs: not bold"
    assert "predates the recipe axis" in block


def test_readme_results_script_refuses_a_readme_without_its_block(tmp_path, capsys):
    module = readme_results()
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n", encoding="utf-8")
    assert module.main(["--readme", str(readme)]) == 2
    assert "results:begin" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "# no block\n"
    begin, end = module.markers("results")
    stale = f"# t\n{begin}\nold\n{end}\n"
    readme.write_text(stale, encoding="utf-8")
    one = ["--readme", str(readme), "--block", "results"]
    assert module.main([*one, "--check"]) == 1
    assert module.main(["--readme", str(readme)]) == 2, "every block by default: one is missing"
    assert readme.read_text(encoding="utf-8") == stale, "and nothing is written"
    assert module.main(one) == 0
    assert module.main([*one, "--check"]) == 0
    assert "| Random | soft |" in readme.read_text(encoding="utf-8")


def test_each_readme_block_renders_its_own_report(tmp_path):
    module = readme_results()
    table = write_table(
        tmp_path / "main_table.csv", [row("Random", 1, "soft", 30.0, recipe="base")]
    )
    readme = tmp_path / "README.md"
    blocks = [module.markers(name) for name in module.BLOCKS]
    readme.write_text("\n".join(f"{b}\n{e}" for b, e in blocks), encoding="utf-8")
    argv = ["--readme", str(readme), "--block", "real-results", "--csv", str(table)]
    assert module.main(argv) == 0
    text = readme.read_text(encoding="utf-8")
    assert module.current_block(text, "results") == "\n".join(blocks[0]), "the other untouched"
    assert "| Random | soft | 30.0 |" in module.current_block(text, "real-results")


def test_readme_and_docs_do_not_repeat_each_other():
    """Each fact once: no line of README prose of 40 characters or more recurs in docs/."""
    docs = {p.name: p.read_text(encoding="utf-8") for p in DOCS_MD}
    repeated = [
        (line.strip(), name)
        for line in README.read_text(encoding="utf-8").splitlines()
        if len(line.strip()) >= 40 and not line.lstrip().startswith(("|", "<!--"))
        for name, text in docs.items()
        if line.strip() in text
    ]
    assert not repeated, repeated


def test_the_readme_points_to_every_docs_page():
    text = README.read_text(encoding="utf-8")
    missing = [p.name for p in DOCS_MD if f"](docs/{p.name})" not in text]
    assert not missing, f"README.md has no pointer to {missing}"


def test_a_block_names_the_teacher_the_one_frame_control_and_the_runs_time(tmp_path):
    module = readme_results()
    table = write_table(
        tmp_path / "main_table.csv", [row("Random", 1, "soft", 30.0, recipe="base")]
    )
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "teacher.json").write_text('{"test_acc": 0.648, "val_acc": 0.833}')
    (tmp_path / "data_and_saliency").mkdir()
    summary = {"single_frame_vs_3d": {"one frame only": 0.657, "all frames (3D teacher)": 0.648}}
    (tmp_path / "data_and_saliency" / "data_summary.json").write_text(json.dumps(summary))
    earlier = {"total_wall_s": 3000.0, "workers": 2, "steps": []}
    run = {"total_wall_s": 600.0, "workers": 1, "steps": [], "earlier": [earlier]}
    (tmp_path / "run_grid.json").write_text(json.dumps(run))
    block = module.render(table, tmp_path, "real-results")
    assert "Teacher: 64.8 % test, 83.3 % val; its recipe on one frame per clip" in block
    assert "(the one-frame control): 65.7 %." in block
    assert "Made by 2 runs of the grid: 60 min of wall time, 2, then 1 worker(s)" in block
    (tmp_path / "run_grid.json").write_text("{")  # unreadable: the line is left out
    assert "Made by" not in module.render(table, tmp_path, "real-results")


def test_the_reports_index_names_the_folders_git_keeps():
    from tsgd_core.report.readme import COMMITTED_REPORTS

    kept = re.findall(r"^!/reports/([^/]+)/$", (ROOT / ".gitignore").read_text(), re.M)
    assert sorted(kept) == sorted(COMMITTED_REPORTS)
    index = (ROOT / "reports" / "README.md").read_text()
    assert all(f"`{name}`" in index for name in COMMITTED_REPORTS)
