"""The book (tsgd_core/report/book.py): a report folder's executed notebooks as a static site.

A tiny report folder is made here (three notebooks written with nbformat, with a PNG output, a
formula and links written as the repository's notebooks write them), built without executing
anything, and every page is opened in headless Chromium: no console error, no request leaving
the machine, every image decoded, every internal link and anchor landing on a file of the site.
The same browser check runs on the book of a grid's own executed notebooks: a copy of the
committed reports/default (the notebooks, README, tables and figures `./run_all.sh` wrote),
built as run_all.sh builds it (`python -m tsgd_core.report.book <reports>`, through the stdout
guard of tsgd_core.runtime.progress). run_all.sh itself
is checked to build the book after every profile's report (with stand-ins for python).
Playwright drives Debian's chromium (`executable_path`): its own browser download needs the
internet. Without chromium or playwright the browser test is skipped with the reason.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tsgd_core.report import book

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = [
    pytest.mark.xdist_group("book"),  # one build, shared by the tests of this file
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # Sphinx 11's, in themes
]

SEARCH_WORD = "zebrafinch"  # a word only the second notebook holds


def png_bytes(color: str = "tab:blue") -> bytes:
    """A small real PNG figure (matplotlib), as a notebook output holds it."""
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [0, 1, 0], color=color)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def figure_output() -> nbformat.NotebookNode:
    data = {"image/png": base64.b64encode(png_bytes()).decode(), "text/plain": "<Figure>"}
    return new_output("display_data", data=data)


def write_notebook(path: Path, cells: list[nbformat.NotebookNode]) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def make_report(root: Path) -> Path:
    """A report folder laid out as run_grid writes one, links as notebooks/ writes them."""
    report = root / "tiny"
    write_notebook(
        report / "quickstart" / "00_quickstart.ipynb",
        [
            new_markdown_cell(
                "# Quickstart\n\nA set of [IPC](../docs/glossary.md#ipc) clips per class, "
                "see the [glossary](../docs/glossary.md) and the [report](05_report.ipynb). "
                "The loss is $\\tau^2 \\mathrm{KL}(p \\| q)$."
            ),
            new_code_cell(
                "print('hello')\nplot()",
                execution_count=1,
                outputs=[new_output("stream", name="stdout", text="hello\n"), figure_output()],
            ),
        ],
    )
    write_notebook(
        report / "05_report.ipynb",
        [
            new_markdown_cell(
                f"# Report\n\nThe {SEARCH_WORD} figure, back to the "
                "[quickstart](00_quickstart.ipynb), the [method](../docs/METHOD.md), its "
                "[TSGF](../docs/METHOD.md#tsgf-definition) and [SRe2L](../docs/references.md#sre2l)"
                ".\n\n"
                "![accuracy](figures/accuracy.png)"
            ),
            new_code_cell(
                "summary()",
                execution_count=1,
                outputs=[
                    new_output(
                        "display_data",
                        data={"text/markdown": "A [paired interval](../docs/glossary.md)."},
                    ),
                    new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
                ],
            ),
        ],
    )
    write_notebook(
        report / "runs" / "main" / "tsgd_ipc1_abc" / "03_distill.ipynb",
        [new_markdown_cell("# Distill\n\nOne run; [TSGF](../docs/glossary.md#tsgf).")],
    )
    (report / "figures").mkdir()
    (report / "figures" / "accuracy.png").write_bytes(png_bytes("tab:red"))
    (report / "README.md").write_text("# Tiny report\n\n![accuracy](figures/accuracy.png)\n")
    (report / "main_table.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    (report / "05_report.html").write_text("<html>nbconvert export, not part of the book</html>")
    return report


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    report = make_report(tmp_path_factory.mktemp("book"))
    site, warnings = book.build_book(report)
    return report, site, warnings


def site_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if not {"_static", "_sources"} & set(p.parts))


def test_the_site_holds_every_notebook_page_and_doc(built):
    report, site, warnings = built
    assert site == report / "book"
    pages = {p.relative_to(site).as_posix() for p in site_pages(site)}
    expected = {
        "index.html",
        "search.html",
        "quickstart/00_quickstart.html",
        "05_report.html",
        "runs/main/tsgd_ipc1_abc/03_distill.html",
        "runs.html",
        "README.html",
        "main_table.html",
        "docs/glossary.html",
        "docs/METHOD.html",
        "docs/references.html",
    }
    assert expected <= pages
    assert warnings == []
    # nothing executed, nothing half-written, the nbconvert export left out
    assert not list(report.glob(book.TEMP_PREFIX + "*"))
    assert not (report / "jupyter_execute").exists()
    assert "nbconvert export" not in (site / "05_report.html").read_text()
    index = (site / "index.html").read_text()
    for caption in ("Tutorials", "Report", "Runs", "Reference"):
        assert caption in index
    quickstart = (site / "quickstart" / "00_quickstart.html").read_text()
    # the links notebooks/ wrote point at the book's copies, anchors kept
    assert 'href="../docs/glossary.html#ipc"' in quickstart
    assert 'href="../05_report.html"' in quickstart
    report_page = (site / "05_report.html").read_text()
    assert 'href="docs/METHOD.html#tsgf-definition"' in report_page  # a heading's anchor
    assert 'href="docs/references.html#sre2l"' in report_page  # a paragraph's raw anchor
    distill = (site / "runs/main/tsgd_ipc1_abc/03_distill.html").read_text()
    assert 'href="../../../docs/glossary.html#tsgf"' in distill
    assert "Main table" in (site / "main_table.html").read_text()  # a title for a bare table


def test_links_are_retargeted_only_where_broken(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.md").write_text("# G\n")
    (tmp_path / "run" / "figures").mkdir(parents=True)
    (tmp_path / "run" / "figures" / "f.png").write_bytes(b"")
    notebooks = {"02_teacher.ipynb": "teacher/02_teacher.ipynb"}
    here = "run/03_distill.ipynb"

    def retarget(target: str) -> str:
        return book.retarget(target, here, tmp_path, notebooks)

    assert retarget("../docs/glossary.md#ipc") == "../docs/glossary.md#ipc"
    assert book.retarget("../docs/glossary.md", "a/b/c/x.ipynb", tmp_path, notebooks) == (
        "../../../docs/glossary.md"
    )
    assert retarget("02_teacher.ipynb#top") == "../teacher/02_teacher.ipynb#top"
    assert retarget("figures/f.png") == "figures/f.png"  # lies beside the executed copy
    for kept in ("https://arxiv.org/abs/1", "#local", "../docs/missing.md", "other.ipynb"):
        assert retarget(kept) == kept
    text = "See [a](02_teacher.ipynb) and ![b](figures/f.png) and [c](https://x.org/y)."
    assert book.retarget_markdown(text, here, tmp_path, notebooks) == (
        "See [a](../teacher/02_teacher.ipynb) and ![b](figures/f.png) and [c](https://x.org/y)."
    )


@pytest.mark.parametrize("case", ["missing", "empty", "file"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    target = tmp_path / "report"
    if case == "empty":
        target.mkdir()
        (target / "README.md").write_text("# no notebooks here\n")
        (target / "broken.failed.ipynb").write_text("{}")  # a failed run's copy does not count
    elif case == "file":
        target.write_text("not a folder")
    assert book.main([str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("book: error: ")
    assert ("no executed notebooks" if case == "empty" else "no report folder") in err
    if case == "empty":  # nothing written
        assert sorted(p.name for p in target.iterdir()) == ["README.md", "broken.failed.ipynb"]


def test_a_rebuild_replaces_the_old_site(tmp_path):
    old, new = tmp_path / "book", tmp_path / "new"
    old.mkdir()
    (old / "stale.html").write_text("old")
    new.mkdir()
    (new / "index.html").write_text("new")
    book.replace_dir(new, old)
    assert sorted(p.name for p in old.iterdir()) == ["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, or the reason the browser test cannot run (before any build)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    for name in (os.environ.get("TSGD_CHROMIUM", ""), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    pytest.skip("no chromium on PATH (apt-get install chromium; run_tests.sh does it as root)")


def local_target(href: str, site: Path) -> tuple[Path, str] | None:
    """The file and fragment an href of the site points at, None for a link elsewhere."""
    parts = urlsplit(href)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path)), parts.fragment


def has_anchor(page: Path, fragment: str) -> bool:
    text = page.read_text(encoding="utf-8")
    return re.search(rf'\b(id|name)="{re.escape(fragment)}"', text) is not None


ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "reports" / "default"


def open_browser(pw, chromium: str):
    """Headless chromium with a page that records console errors, page errors, failed requests
    and every request that would leave the machine (they are aborted)."""
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page()
    page.problems, page.outside = [], []
    page.on(
        "console",
        lambda m: (
            page.problems.append(f"{page.url}: console {m.type}: {m.text}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: page.problems.append(f"{page.url}: page error: {e}"))
    page.on("requestfailed", lambda r: page.problems.append(f"{page.url}: failed: {r.url}"))

    def offline(route) -> None:
        page.outside.append(route.request.url)  # the book must not reach the network
        route.abort()

    page.route(re.compile(r"^(?!file:).*"), offline)
    return browser, page


def one_page_per_notebook(site: Path) -> list[Path]:
    """Every page outside runs/, and under runs/ the first page of each notebook (the grid's
    cells repeat 03 and 04 dozens of times: one of each is the same template, the same check)."""
    pages, seen = [], set()
    for html in site_pages(site):
        if "runs" in html.relative_to(site).parts:
            if html.stem in seen:
                continue
            seen.add(html.stem)
        pages.append(html)
    return pages


# What a loaded page still runs: MathJax's typesetting (its errors reach the console) and images
# being decoded. Awaited directly: "networkidle" would wait 500 ms on every page.
SETTLED = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
}"""


def visit_every_page(page, site: Path, pages: list[Path] | None = None) -> int:
    """Load each page of the site (or `pages`), check its images and internal links into
    `page.problems`; returns how many images the pages hold."""
    images = 0
    for html in site_pages(site) if pages is None else pages:
        page.goto(html.as_uri(), wait_until="load")
        page.evaluate(SETTLED)
        for src, width in page.eval_on_selector_all(
            "img", "els => els.map(e => [e.currentSrc, e.naturalWidth])"
        ):
            images += 1
            if not width:
                page.problems.append(f"{html.name}: image not decoded: {src}")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            target = local_target(href, site)
            if target is None:
                continue
            path, fragment = target
            if not path.is_file():
                page.problems.append(f"{html.name}: broken link {href}")
            elif fragment and path.suffix == ".html" and not has_anchor(path, fragment):
                page.problems.append(f"{html.name}: no anchor #{fragment} in {path.name}")
    return images


def test_every_page_loads_clean_in_chromium(chromium, built):
    _, site, _ = built
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser, page = open_browser(pw, chromium)
        images = visit_every_page(page, site)
        assert page.problems == []
        assert page.outside == []
        # the notebook's formula is typeset by the bundled MathJax
        page.goto((site / "quickstart" / "00_quickstart.html").as_uri(), wait_until="load")
        page.wait_for_selector("mjx-container", timeout=15_000)
        # Sphinx's search finds the word that only the report notebook holds
        page.goto((site / "search.html").as_uri() + f"?q={SEARCH_WORD}", wait_until="load")
        page.wait_for_selector("#search-results li a", timeout=15_000)
        hits = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.href)")
        browser.close()
    # the notebook's PNG output and the report figure (in README and in the notebook)
    assert images >= 3
    assert any(h.split("#")[0].endswith("/05_report.html") for h in hits), hits


RUNS_KEPT = 2  # executed run folders kept per group in the grid book's copy


def keep_few_executed_runs(report: Path) -> None:
    """Remove all but the first RUNS_KEPT executed run folders of each group: the grid's cells
    repeat 03 and 04 dozens of times (one template, one check), and Sphinx would spend half a
    minute on the copies. Run folders without notebooks stay (they make no page)."""
    for group in sorted((report / "runs").glob("*/")):
        executed = sorted(run for run in group.iterdir() if any(run.glob("*.ipynb")))
        for run in executed[RUNS_KEPT:]:
            shutil.rmtree(run)


@pytest.fixture(scope="session")  # built once per process, however the tests are interleaved
def grid_book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the committed default report (as ./run_all.sh wrote it) and its book, built the
    way run_all.sh builds it: `python -m tsgd_core.report.book <reports>`."""
    if not list(COMMITTED.rglob("*.ipynb")):
        pytest.skip("no executed notebooks under reports/default in this checkout")
    report = tmp_path_factory.mktemp("grid") / "default"
    shutil.copytree(
        COMMITTED, report, ignore=shutil.ignore_patterns(book.BOOK_DIR, book.TEMP_PREFIX + "*")
    )
    keep_few_executed_runs(report)
    result = subprocess.run(
        [sys.executable, "-m", "tsgd_core.report.book", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "(0 Sphinx warnings)" in result.stderr + result.stdout
    return report, report / book.BOOK_DIR


def test_the_book_of_a_grid_run_has_a_page_per_executed_notebook(grid_book):
    report, site = grid_book
    executed = [
        p.relative_to(report) for p in report.rglob("*.ipynb") if book.BOOK_DIR not in p.parts
    ]
    assert {p.stem for p in executed} >= {"00_quickstart", "01_data_and_saliency", "05_report"}
    for notebook in executed:
        assert (site / notebook.with_suffix(".html")).is_file(), notebook
    for page in ("index.html", "README.html", "main_table.html", "docs/glossary.html"):
        assert (site / page).is_file(), page
    index = (site / "index.html").read_text()
    assert "Tutorials" in index and "Report" in index


def test_the_book_of_a_grid_run_loads_clean_in_chromium(chromium, grid_book):
    report, site = grid_book
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser, page = open_browser(pw, chromium)
        pages = one_page_per_notebook(site)
        images = visit_every_page(page, site, pages)
        browser.close()
    # every executed notebook's page is visited (a clean clone holds the top-level ones; a
    # grid run's checkout also holds runs/' 03 and 04)
    executed = {p.stem for p in report.rglob("*.ipynb") if book.BOOK_DIR not in p.parts}
    assert {p.stem for p in pages} >= executed | {"05_report", "README"}
    assert page.problems == []
    assert page.outside == []
    # README's figures and the notebooks' own plots: far more than a handful
    assert images >= 10, images


def fake_checkout(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """run_all.sh beside a bootstrap that does nothing and a `python` that logs its arguments
    (and fails for run_grid when FAIL_GRID is set): what run_all.sh would run, without running it."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "run_all.sh", root / "run_all.sh")
    (root / "scripts" / "bootstrap.sh").write_text(": # the environment is ready\n")
    tools, log = root / "bin", root / "calls.log"
    tools.mkdir()
    python = tools / "python"
    python.write_text(
        f"#!/bin/sh\necho \"$*\" >> '{log}'\n"
        'case "$1" in scripts/run_grid.py) [ -z "$FAIL_GRID" ] || exit 3 ;; esac\n'
    )
    python.chmod(0o755)
    env = {"PATH": f"{tools}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(root)}
    return log, root / "run_all.sh", env


@pytest.mark.parametrize(
    ("argv", "profile", "reports", "builds"),
    [
        (["--quick"], "quick", "reports/quick", True),
        (["--profile", "smoke"], "smoke", "reports/smoke", True),
        (["--profile=default"], "default", "reports/default", True),
        (
            ["--profile", "real-cpu", "--dataset", "ucf101", "--root", "x"],
            "real-cpu",
            "reports/real-cpu-ucf101",
            True,
        ),
        (["--profile", "default", "--merge"], "default", "reports/default", True),
        (["--profile", "default", "--shard", "0/4"], "default", "reports/default", False),
        (["--quick", "--dry-run"], "quick", "reports/quick", False),
    ],
)
def test_run_all_builds_the_book_after_every_profiles_report(
    tmp_path, argv, profile, reports, builds
):
    log, script, env = fake_checkout(tmp_path)
    result = subprocess.run(
        ["bash", str(script), *argv], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 0, result.stderr
    grid, *after = log.read_text().splitlines()
    assert grid.startswith(f"scripts/run_grid.py --profile {profile} --reports {reports} ")
    # through the stdout guard, so a reader that leaves (| head -1) does not stop the build
    book = "-m tsgd_core.runtime.progress tsgd_core.report.book"
    assert after == ([f"{book} {reports}"] if builds else [])


@pytest.mark.parametrize("flag", [["--reports", "elsewhere/q"], ["--reports=elsewhere/q"]])
def test_run_all_builds_the_book_where_the_users_reports_go(tmp_path, flag):
    log, script, env = fake_checkout(tmp_path)
    result = subprocess.run(
        ["bash", str(script), "--quick", *flag], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 0, result.stderr
    grid, *after = log.read_text().splitlines()
    assert "elsewhere/q" in grid
    assert after == ["-m tsgd_core.runtime.progress tsgd_core.report.book elsewhere/q"]


def test_run_all_builds_no_book_when_the_grid_fails(tmp_path):
    log, script, env = fake_checkout(tmp_path)
    result = subprocess.run(
        ["bash", str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**env, "FAIL_GRID": "1"},
    )
    assert result.returncode == 3
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["scripts/run_grid.py"]


def test_notebook_times_come_from_the_run_record(tmp_path, capsys):
    steps = [
        {"notebook": "01_data_and_saliency.ipynb", "wall_s": 12.0, "skipped": False},
        {"notebook": "03_distill.ipynb", "wall_s": 4.0, "skipped": False},
        {"notebook": "03_distill.ipynb", "wall_s": 6.0, "skipped": False},
        {"notebook": "03_distill.ipynb", "wall_s": 11.0, "skipped": False},
        {"notebook": "03_distill.ipynb", "skipped": True},  # cached: not a run
        {"notebook": "", "wall_s": 99.0, "skipped": False},  # a numbers-only cell, no notebook
    ]
    run = {"profile": "quick", "workers": 2, "threads": "1", "total_wall_s": 418.2, "steps": steps}
    (tmp_path / "run_grid.json").write_text(json.dumps(run))
    times, source = book.notebook_times(tmp_path)
    assert [(t.notebook, t.runs, t.median_s, t.max_s, t.total_s) for t in times] == [
        ("01_data_and_saliency", 1, 12.0, 12.0, 12.0),
        ("03_distill", 3, 6.0, 11.0, 21.0),
    ]
    assert "profile quick, 2 worker(s)" in source and "418 s wall" in source
    assert book.main(["--times", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "| 03_distill | 3 | 6.0 | 11.0 | 21.0 |" in out
    assert not (tmp_path / book.BOOK_DIR).exists(), "--times builds nothing"
    # a partial run after it keeps the whole run under "earlier": the times stay the whole run's
    partial = {**run, "total_wall_s": 30.0, "steps": steps[1:2], "earlier": [run]}
    (tmp_path / "run_grid.json").write_text(json.dumps(partial))
    assert book.notebook_times(tmp_path)[0] == times


def test_notebook_times_fall_back_to_papermill_metadata(tmp_path, capsys):
    report = make_report(tmp_path)
    path = report / "05_report.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["papermill"] = {"duration": 7.25}
    nbformat.write(nb, path)
    times, source = book.notebook_times(report)
    assert [(t.notebook, t.runs, t.total_s) for t in times] == [("05_report", 1, 7.25)]
    assert source.startswith("papermill's duration")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert book.main(["--times", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no run record (run_grid.json)" in err


def test_the_documented_times_are_the_committed_runs_record():
    if not (COMMITTED / book.RUN_RECORD).is_file():
        pytest.skip("no committed reports/default/run_grid.json in this checkout")
    table = book.times_markdown(*book.notebook_times(COMMITTED)).splitlines()[2:]
    times = (ROOT / "docs" / "times.md").read_text()
    missing = [row for row in table if row not in times.splitlines()]
    assert missing == [], "docs/times.md's notebook times differ from `--times reports/default`"
