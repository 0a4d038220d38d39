"""Build the HTML book from the executed chapters with Jupyter Book 1.x.

The sources are ``book/``: the committed pages (``intro.md``) and the chapters
that ``cmrpipe run`` executed into it. The configuration and table of contents are
the repository's ``_config.yml`` and ``_toc.yml``. Jupyter Book never executes
anything (``execute_notebooks: "off"``): papermill already has. A chapter that has
not been run, or whose executed notebook holds a papermill error cell, is refused
before Sphinx starts, so a failed run is never published.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

from cmrpipe.paths import BOOK_CONFIG, BOOK_DIR, BOOK_TOC
from cmrpipe.runner import chapter_id, notebook_errors


class BookError(RuntimeError):
    """The book cannot be built; the message says which page and why."""


def toc_files(toc_path: Path = BOOK_TOC) -> list[str]:
    """Every page of a Jupyter Book table of contents, root first, without suffixes.

    Raises
    ------
    BookError
        When the file is not a table of contents with a ``root`` page.
    """
    toc = yaml.safe_load(Path(toc_path).read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{toc_path}: not a Jupyter Book table of contents (no 'root' page)")
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def _find_page(book_dir: Path, name: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        if (book_dir / f"{name}{suffix}").exists():
            return book_dir / f"{name}{suffix}"
    return None


def check_pages(book_dir: Path = BOOK_DIR, toc_path: Path = BOOK_TOC) -> list[Path]:
    """The pages of the book, each checked: present, executed cleanly, all by one run.

    Parameters
    ----------
    book_dir : path
        The book's sources (pages and executed chapters).
    toc_path : path
        The table of contents naming the pages.

    Returns
    -------
    list of Path
        The pages, in table-of-contents order.

    Raises
    ------
    BookError
        Naming every missing page (the chapter has not been run), every notebook
        that failed (with the failing cell), the runs when the chapters come from
        more than one run (parameter file), and every chapter computed from an
        execution of an earlier chapter other than the one in the book.
    """
    book_dir = Path(book_dir)
    problems, pages, runs, executions = [], [], {}, {}
    for name in toc_files(toc_path):
        page = _find_page(book_dir, name)
        if page is None:
            problems.append(f"{book_dir / name}.ipynb is missing: run the chapter first "
                            "(cmrpipe run --params params/default.yaml)")
            continue
        if page.suffix == ".ipynb":
            nb = nbformat.read(page, as_version=4)
            errors = notebook_errors(nb)
            if errors:
                problems.append(f"{page} contains a failed execution ({'; '.join(errors)}); "
                                "fix the chapter and run it again")
            run = nb.metadata.get("cmrpipe")
            if run is None:
                problems.append(f"{page} was not executed by `cmrpipe run`")
            else:
                runs.setdefault((run["run_name"], run["params_digest"]), []).append(page.name)
                executions[chapter_id(page.name)] = (page.name, run.get("output"), run.get("upstream", {}))
        pages.append(page)
    for page_name, _, upstream in executions.values():
        for earlier, output in upstream.items():
            if earlier in executions and executions[earlier][1] != output:
                problems.append(f"{book_dir / page_name} was computed from an earlier execution of "
                                f"{executions[earlier][0]}; run its chapter again")
    if len(runs) > 1:
        mix = "; ".join(f"run {name!r} (parameters {digest[:8]}): {', '.join(names)}"
                        for (name, digest), names in runs.items())
        problems.append(f"the chapters in {book_dir} come from different runs ({mix}); "
                        "run every chapter with one parameter file")
    if problems:
        raise BookError("refusing to build the book:\n  " + "\n  ".join(problems))
    return pages


def build_book(book_dir: Path = BOOK_DIR, config: Path = BOOK_CONFIG, toc: Path = BOOK_TOC,
               out_dir: Path | None = None) -> Path:
    """Check the pages, build the HTML book, and return the path of its ``index.html``.

    Parameters
    ----------
    book_dir : path
        The book's sources: its pages and the executed chapters.
    config, toc : path
        Jupyter Book's ``_config.yml`` and ``_toc.yml``.
    out_dir : path, optional
        The HTML goes to ``<out_dir>/_build/html`` (``out_dir`` defaults to ``book_dir``).

    Raises
    ------
    BookError
        A page is refused (see :func:`check_pages`), or Sphinx fails or warns.
    """
    book_dir = Path(book_dir).resolve()
    out_dir = Path(out_dir).resolve() if out_dir else book_dir
    check_pages(book_dir, toc)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", str(book_dir),
               "--config", str(Path(config).resolve()), "--toc", str(Path(toc).resolve()),
               "--path-output", str(out_dir), "--builder", "html", "-W", "--keep-going"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise BookError(f"jupyter-book build failed (exit {done.returncode}; Sphinx warnings are errors, "
                        f"so an unresolved glue key or a broken reference stops it):\n{tail}")
    index = out_dir / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookError(f"jupyter-book reported success but {index} does not exist")
    return index
