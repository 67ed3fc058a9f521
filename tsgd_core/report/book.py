"""The executed notebooks and the report as a browsable static site (a book).

    python -m tsgd_core.report.book reports/quick          # -> reports/quick/book/index.html
    python -m tsgd_core.report.book --times reports/quick  # each notebook's run time (markdown)

Sphinx with myst-nb renders the executed copies that `./run_all.sh` left in a report folder
WITHOUT running them again (`nb_execution_mode = "off"`), together with the report's README,
its other markdown tables, docs/METHOD.md, docs/glossary.md and docs/references.md: a table of
contents, Sphinx's own search and every figure inline. The build is offline: the theme
(sphinx-book-theme) ships its assets, and MathJax comes from the sphinx-mathjax-offline package
instead of a CDN.

The notebooks are written in `notebooks/` and link to `../docs/glossary.md#ipc` or to
`02_teacher.ipynb`; their executed copies live elsewhere (`quickstart/`, `runs/main/<run>/`),
so such links are re-pointed at the book's copies of those files. Nothing is written until
the whole site is built: it goes to a temporary folder that is then renamed to `book/`.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import posixpath
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

BOOK_DIR = "book"
# the method and its words first, then the pages README.md points to, one topic a page
DOCS = (
    "METHOD.md",
    "glossary.md",
    "references.md",
    "results.md",
    "experiments.md",
    "notebooks.md",
    "cli.md",
    "real-datasets.md",
    "scaling.md",
    "design.md",
    "speed.md",
    "times.md",
)
# what the report folder holds besides the notebooks' sources: never part of the book
SKIPPED_NAMES = {BOOK_DIR, "logs", ".ipynb_checkpoints", "__pycache__"}
SKIPPED_SUFFIXES = (".html", ".failed.ipynb", ".running.ipynb")
TEMP_PREFIX = ".book.tmp-"  # the build folder inside the report; a killed build leaves it
STALE_TEMP_AGE_S = 3600.0
# markdown links and images: [text](target) / ![alt](target), target without spaces
MD_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
# `<a id="x"></a>` on its own line above a heading names that heading: MyST's `{#x}` does the
# same and lets `glossary.md#x` links from other pages resolve. Above a paragraph (a reference)
# the raw anchor stays: MyST cannot see it, but the link it writes still lands on it.
HEADING_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>[ \t]*\n(?=#)', re.MULTILINE)
RAW_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
UNSEEN_ANCHOR = re.compile(r"local id not found in doc '([^']+)': '([^']+)'")
# the MathJax files a page needs (the tex-chtml component, its fonts and what it loads on demand)
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")


class BookError(Exception):
    """Bad input: the message names the problem and what to do."""


@dataclass(frozen=True)
class Sources:
    """What a book is made of, as paths relative to the report folder."""

    chapters: list[str]  # the tutorial notebooks, in their number order
    runs: dict[str, list[str]]  # group -> the per-run notebooks under runs/<group>/
    pages: list[str]  # the report's markdown files, README.md first


def find_docs_dir(start: Path | None = None) -> Path | None:
    """The repository's docs/ folder: the first folder above this file holding docs/glossary.md."""
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        if (folder / "docs" / "glossary.md").is_file():
            return folder / "docs"
    return None


def is_skipped(relative: Path) -> bool:
    """Whether a path of the report folder stays out of the book (old books, HTML, temporaries)."""
    if any(part in SKIPPED_NAMES or part.startswith(".") for part in relative.parts):
        return True
    return relative.name.endswith(SKIPPED_SUFFIXES)


def collect_sources(report_dir: Path) -> Sources:
    """The notebooks and markdown pages of a report folder."""
    notebooks, pages = [], []
    for path in sorted(report_dir.rglob("*")):
        relative = path.relative_to(report_dir)
        if not path.is_file() or is_skipped(relative):
            continue
        if path.suffix == ".ipynb":
            notebooks.append(relative.as_posix())
        elif path.suffix == ".md":
            pages.append(relative.as_posix())
    runs: dict[str, list[str]] = {}
    for name in notebooks:
        parts = name.split("/")
        if parts[0] == "runs" and len(parts) > 2:
            runs.setdefault(parts[1], []).append(name)
    chapters = sorted(
        (n for n in notebooks if not n.startswith("runs/")), key=lambda n: (Path(n).name, n)
    )
    pages.sort(key=lambda p: (p != "README.md", p))
    return Sources(chapters=chapters, runs=runs, pages=pages)


def check_report_dir(report_dir: Path) -> Sources:
    """The sources of `report_dir`, or a BookError saying why there is no book to build."""
    if not report_dir.is_dir():
        raise BookError(
            f"no report folder {report_dir}: pass a folder that ./run_all.sh wrote, "
            "e.g. reports/quick (./run_all.sh --quick makes it)"
        )
    sources = collect_sources(report_dir)
    if not sources.chapters and not sources.runs:
        raise BookError(
            f"no executed notebooks (*.ipynb) in {report_dir}: run ./run_all.sh for that "
            "profile first, then build its book"
        )
    return sources


def notebook_locations(sources: Sources) -> dict[str, str]:
    """Notebook file name -> the path of its executed copy (a tutorial's copy before a run's)."""
    found: dict[str, str] = {}
    for name in [*sources.chapters, *(n for group in sources.runs.values() for n in group)]:
        found.setdefault(Path(name).name, name)
    return found


def retarget(target: str, here: str, src: Path, notebooks: dict[str, str]) -> str:
    """A link of a notebook at `here` (relative to the book's sources), written as seen from the
    repository's notebooks/ folder, pointed at the book's copy of what it names."""
    path, sep, anchor = target.partition("#")
    if not path or "://" in path or path.startswith(("/", "mailto:", "data:")):
        return target
    folder = posixpath.dirname(here)
    if (src / folder / path).exists():
        return target  # already right where the executed copy lies (figures it wrote)
    in_repo = posixpath.normpath(posixpath.join("notebooks", path))
    if in_repo.startswith("docs/") and (src / in_repo).exists():
        new = in_repo
    elif in_repo.startswith("notebooks/") and posixpath.basename(in_repo) in notebooks:
        new = notebooks[posixpath.basename(in_repo)]
    else:
        return target  # left alone: Sphinx names it if it is broken
    return posixpath.relpath(new, folder or ".") + sep + anchor


def retarget_markdown(text: str, here: str, src: Path, notebooks: dict[str, str]) -> str:
    """Every markdown link and image of `text` passed through `retarget`."""

    def replace(match: re.Match[str]) -> str:
        return match[1] + retarget(match[2], here, src, notebooks) + match[3]

    return MD_LINK.sub(replace, text)


def rewrite_notebook(path: Path, here: str, src: Path, notebooks: dict[str, str]) -> None:
    """Re-point the links of a copied notebook's markdown cells and markdown outputs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = retarget_markdown(cell.source, here, src, notebooks)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                text = data["text/markdown"]
                text = "".join(text) if isinstance(text, list) else text
                data["text/markdown"] = retarget_markdown(text, here, src, notebooks)
    nbformat.write(nb, path)


def has_title(text: str) -> bool:
    """Whether a markdown page starts with a heading (Sphinx takes its title from it)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return first.startswith("# ")


def copy_report(report_dir: Path, src: Path) -> None:
    """The report folder's files, less old books, HTML exports and temporaries."""
    for path in sorted(report_dir.rglob("*")):
        relative = path.relative_to(report_dir)
        if path.is_file() and not is_skipped(relative):
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / relative)


def copy_docs(docs_dir: Path, src: Path) -> dict[str, set[str]]:
    """docs/*.md into the sources, the `<a id>` anchors of headings turned into MyST heading
    ids; returns the raw anchors left (document name -> ids)."""
    (src / "docs").mkdir(exist_ok=True)
    raw = {}
    for name in DOCS:
        text = HEADING_ANCHOR.sub(r"{#\1}\n", (docs_dir / name).read_text(encoding="utf-8"))
        (src / "docs" / name).write_text(text, encoding="utf-8")
        raw[f"docs/{doc(name)}"] = set(RAW_ANCHOR.findall(text))
    return raw


def is_noise(warning: str, raw_anchors: dict[str, set[str]]) -> bool:
    """Whether a Sphinx warning is about a link to a raw `<a id>` anchor, which does land."""
    match = UNSEEN_ANCHOR.search(warning)
    return bool(match) and match[2] in raw_anchors.get(match[1], set())


def title_pages(src: Path, pages: Iterable[str]) -> None:
    """Give a title to the report's markdown files that have none (the bare tables)."""
    for page in pages:
        text = (src / page).read_text(encoding="utf-8")
        if not has_title(text):
            title = Path(page).stem.replace("_", " ").capitalize()
            (src / page).write_text(f"# {title}\n\n{text}", encoding="utf-8")


def toctree(caption: str, entries: Iterable[str], hidden: bool = False) -> str:
    """A MyST toctree directive."""
    options = f":caption: {caption}\n:maxdepth: 1\n" + (":hidden:\n" if hidden else "")
    body = "\n".join(entries)
    return f"```{{toctree}}\n{options}\n{body}\n```\n"


def doc(path: str) -> str:
    """The Sphinx document name of a source file (its path without the suffix)."""
    return posixpath.splitext(path)[0]


def write_runs_page(src: Path, runs: dict[str, list[str]]) -> None:
    """runs.md: one toctree a group, each entry named by its run folder and notebook."""
    parts = [
        "# Runs\n\nThe executed notebooks of every run of the grid, one section a group; "
        "each run folder holds its distillation (03) and evaluation (04) notebooks.\n"
    ]
    for group, names in sorted(runs.items()):
        entries = [f"{Path(n).parent.name}: {Path(n).stem} <{doc(n)}>" for n in names]
        parts.append(f"\n## {group}\n\n" + toctree(group, entries))
    (src / "runs.md").write_text("".join(parts), encoding="utf-8")


def write_index(src: Path, sources: Sources, profile: str) -> None:
    """index.md: what the book is and its table of contents."""
    text = [
        f"# TSGD: tutorials and report (`{profile}`)\n\n",
        "The executed notebooks of this report, rendered as they ran (nothing is run again), "
        "with the report, the method, a glossary and the references. Search the whole book "
        "with the search box; every figure is shown where the notebook drew it.\n\n",
    ]
    if sources.chapters:
        text.append(toctree("Tutorials", [doc(n) for n in sources.chapters]))
    if sources.pages:
        text.append(toctree("Report", [doc(p) for p in sources.pages]))
    if sources.runs:
        text.append(toctree("Runs", ["runs"]))
    text.append(toctree("Reference", [f"docs/{doc(name)}" for name in DOCS]))
    (src / "index.md").write_text("\n".join(text), encoding="utf-8")


def sphinx_conf(profile: str) -> dict[str, Any]:
    """The Sphinx settings of the book (written to conf.py)."""
    return {
        "project": f"TSGD ({profile})",
        "html_title": f"TSGD tutorials and report: {profile}",
        "extensions": ["myst_nb"],
        "nb_execution_mode": "off",  # the executed copies as they are: nothing re-runs
        "nb_merge_streams": True,
        "nb_render_markdown_format": "myst",  # links in generated markdown resolve too
        "nb_ipywidgets_js": {},  # its default loads require.js from a CDN
        "myst_enable_extensions": ["dollarmath", "amsmath", "attrs_block"],
        "myst_heading_anchors": 3,
        "mathjax_path": "mathjax/tex-chtml.js",  # copied from sphinx-mathjax-offline
        "html_theme": "sphinx_book_theme",
        "html_theme_options": {
            "home_page_in_toc": True,
            "show_toc_level": 2,
            "use_download_button": False,  # it offers the source, not copied (below)
        },
        # the theme's colour mode on a first visit: empty, its script logs a console error
        "html_context": {"default_mode": "auto"},
        # no copy of each source in _sources/: the executed notebooks lie beside the book, and
        # their copies would make up most of its size (63 of 85 MB for 112 notebooks)
        "html_copy_source": False,
        # the result previews fetch() each page, which browsers refuse for file:// pages
        "html_show_search_summary": False,
        "exclude_patterns": ["**/.ipynb_checkpoints"],
        "language": "en",
    }


def write_conf(src: Path, profile: str) -> None:
    lines = [f"{key} = {value!r}\n" for key, value in sphinx_conf(profile).items()]
    (src / "conf.py").write_text("# written by tsgd_core.report.book\n" + "".join(lines))


def mathjax_dir() -> Path:
    """The MathJax 3 files of the sphinx-mathjax-offline package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("sphinx-mathjax-offline")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"


def mathjax_copier(source: Path) -> Callable[[Any, Exception | None], None]:
    """A build-finished handler that copies MathJax into the site's _static/mathjax."""

    def copy(app: Any, exc: Exception | None) -> None:
        if exc is not None:
            return
        target = Path(app.outdir) / "_static" / "mathjax"
        for part in MATHJAX_PARTS:
            if (source / part).is_dir():
                shutil.copytree(source / part, target / part, dirs_exist_ok=True)
            else:
                (target / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / part, target / part)

    return copy


def prepare_sources(
    report_dir: Path, docs_dir: Path, src: Path, sources: Sources
) -> dict[str, set[str]]:
    """The Sphinx source folder: the report's files, the docs, index, runs page and conf.py;
    returns the docs' raw anchors (see copy_docs)."""
    copy_report(report_dir, src)
    raw_anchors = copy_docs(docs_dir, src)
    title_pages(src, sources.pages)
    locations = notebook_locations(sources)
    for name in [*sources.chapters, *(n for group in sources.runs.values() for n in group)]:
        rewrite_notebook(src / name, name, src, locations)
    if sources.runs:
        write_runs_page(src, sources.runs)
    write_index(src, sources, report_dir.name)
    write_conf(src, report_dir.name)
    return raw_anchors


def run_sphinx(src: Path, out: Path, doctrees: Path) -> tuple[int, list[str]]:
    """Build the HTML site; returns Sphinx's status code and its warnings."""
    from sphinx.application import Sphinx
    from sphinx.util.console import nocolor
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    nocolor()  # the warnings go to a string, not a terminal

    warnings = io.StringIO()
    with patch_docutils(src), docutils_namespace():
        app = Sphinx(
            srcdir=src,
            confdir=src,
            outdir=out,
            doctreedir=doctrees,
            buildername="html",
            status=None,
            warning=warnings,
            freshenv=True,
        )
        app.connect("build-finished", mathjax_copier(mathjax_dir()))
        app.build()
    lines = [line for line in warnings.getvalue().splitlines() if line.strip()]
    return app.statuscode, lines


def remove_stale_builds(report_dir: Path) -> None:
    """Delete the build folders that a killed build left behind (older than an hour)."""
    for path in report_dir.glob(TEMP_PREFIX + "*"):
        if path.is_dir() and time.time() - path.stat().st_mtime > STALE_TEMP_AGE_S:
            shutil.rmtree(path, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Put the folder `new` in place of `target` (renames only: no half-written site)."""
    old = None
    if target.exists():
        old = target.with_name(f"{TEMP_PREFIX}old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_book(
    report_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    docs_dir: str | os.PathLike[str] | None = None,
) -> tuple[Path, list[str]]:
    """Build the book of a report folder into `out` (default `<report_dir>/book`); returns the
    site's folder and Sphinx's warnings. Raises BookError on bad input."""
    report = Path(report_dir).resolve()
    sources = check_report_dir(report)
    docs = Path(docs_dir) if docs_dir else find_docs_dir()
    if docs is None or not all((docs / name).is_file() for name in DOCS):
        raise BookError(
            f"no docs folder with {', '.join(DOCS)} (looked in {docs}): pass --docs DIR, the "
            "repository's docs/"
        )
    site = Path(out).resolve() if out else report / BOOK_DIR
    site.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(site.parent)
    build = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=site.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="tsgd-book-src-") as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            raw_anchors = prepare_sources(report, docs, src, sources)
            # myst-nb writes next to the HTML folder (jupyter_execute/): keep it in `build`
            code, warnings = run_sphinx(src, build / "html", Path(tmp) / "doctrees")
            # name the sources as the report names them, not by the temporary copy
            warnings = [w.replace(f"{src}{os.sep}", "") for w in warnings]
            warnings = [w for w in warnings if not is_noise(w, raw_anchors)]
        if code != 0:
            raise BookError(f"Sphinx failed (status {code}):\n" + "\n".join(warnings))
        replace_dir(build / "html", site)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return site, warnings


RUN_RECORD = "run_grid.json"  # what scripts/run_grid.py records of a run, beside its report


def recorded_runs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run a run_grid.json records, oldest first: the ones before it (a partial, failed or
    interrupted run keeps them under "earlier"), then the latest."""
    return [*record.get("earlier", []), record]


def largest_run(record: dict[str, Any]) -> dict[str, Any]:
    """The recorded run with the most steps: the whole grid, where partial runs followed it."""
    return max(recorded_runs(record), key=lambda run: len(run.get("steps", [])))


@dataclass(frozen=True)
class NotebookTime:
    """How long one notebook took over a run: its executions and their wall seconds."""

    notebook: str
    runs: int
    median_s: float
    max_s: float
    total_s: float


def _times_of(durations: dict[str, list[float]]) -> list[NotebookTime]:
    return [
        NotebookTime(name, len(d), statistics.median(d), max(d), sum(d))
        for name, d in sorted(durations.items())
    ]


def notebook_times(report_dir: str | os.PathLike[str]) -> tuple[list[NotebookTime], str]:
    """Each notebook's wall time over the run that wrote `report_dir`, and where it comes from:
    the steps of its run_grid.json (skipped steps left out; of the recorded run with the most
    steps, where partial runs followed it), or, without that record,
    papermill's `duration` in each executed copy's metadata. Raises BookError when neither."""
    report = Path(report_dir)
    record = report / RUN_RECORD
    durations: dict[str, list[float]] = {}
    if record.is_file():
        run = largest_run(json.loads(record.read_text()))
        for step in run.get("steps", []):
            if not step.get("skipped") and step.get("notebook"):
                durations.setdefault(Path(step["notebook"]).stem, []).append(step["wall_s"])
        source = (
            f"{record}: profile {run.get('profile')}, {run.get('workers')} worker(s), "
            f"{run.get('threads')} thread(s) each, the whole run {run.get('total_wall_s', 0):.0f} "
            "s wall; per notebook the wall time of each execution, kernel overhead included"
        )
    else:
        for path in sorted(report.rglob("*.ipynb")):
            relative = path.relative_to(report)
            duration = nbformat.read(path, as_version=4).metadata.get("papermill", {})
            if not is_skipped(relative) and duration.get("duration") is not None:
                durations.setdefault(path.stem, []).append(float(duration["duration"]))
        source = f"papermill's duration in the executed copies under {report}"
    if not durations:
        raise BookError(
            f"no run record ({RUN_RECORD}) and no executed notebook with papermill's duration "
            f"in {report}: pass a folder that ./run_all.sh wrote"
        )
    return _times_of(durations), source


def times_markdown(times: list[NotebookTime], source: str) -> str:
    """The notebook times as a markdown table (seconds), under a line naming their record."""
    rows = [
        f"| {t.notebook} | {t.runs} | {t.median_s:.1f} | {t.max_s:.1f} | {t.total_s:.1f} |"
        for t in times
    ]
    return "\n".join(
        [
            f"From {source}.",
            "",
            "| notebook | runs | median [s] | max [s] | total [s] |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tsgd_core.report.book",
        description="Build the executed notebooks and the report of REPORT_DIR into a static "
        "site, REPORT_DIR/book/ (nothing is executed).",
    )
    parser.add_argument("report_dir", metavar="REPORT_DIR", help="e.g. reports/quick")
    parser.add_argument("--out", help="the site's folder (default REPORT_DIR/book)")
    parser.add_argument("--docs", help="the folder of METHOD.md, glossary.md and the other pages")
    parser.add_argument("--quiet", action="store_true", help="do not list Sphinx's warnings")
    parser.add_argument(
        "--times",
        action="store_true",
        help="print each notebook's run time from the run's records as a markdown table "
        "(run_grid.json, else papermill's metadata) and build nothing",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.times:
        try:
            print(times_markdown(*notebook_times(args.report_dir)))
        except BookError as error:
            print(f"book: error: {error}", file=sys.stderr)
            return 2
        return 0
    try:
        site, warnings = build_book(args.report_dir, args.out, args.docs)
    except BookError as error:
        print(f"book: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(
            f"book: error: {error.name or error} is missing: the book needs sphinx, myst-nb, "
            "sphinx-book-theme and sphinx-mathjax-offline (pip install -e '.[notebooks]')",
            file=sys.stderr,
        )
        return 2
    if warnings and not args.quiet:
        print("\n".join(warnings), file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(f"[book] {site / 'index.html'} in {elapsed:.0f} s ({len(warnings)} Sphinx warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
