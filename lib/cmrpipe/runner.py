"""Execute the ordered chapters of the book with papermill.

A chapter is a notebook ``notebooks/NN_name.ipynb``; ``NN`` orders the chapters
and names them on the command line (``--chapters 01,03``). For a parameter file,
:func:`run_chapters` executes each chapter with papermill (explicit kernel and
working directory, the file's keys injected as parameters), writes the executed
notebook into the run directory (``notebooks/``) and into ``book/``, and logs
timings to the run's ``logs/``.

A chapter whose notebook, parameters and inputs are unchanged since its last
successful run is skipped: its stamp (``logs/stamps/NN.json``) holds the hashes.
Its inputs are the library's source code, the cohort manifest when it is a file,
and the stamps of the chapters before it, so re-running an earlier chapter re-runs
the later ones. The first failing chapter stops the run with a :class:`ChapterFailed`
that says, in plain words, which chapter, which cell and what error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from cmrpipe.params import Params
from cmrpipe.paths import BOOK_DIR, NOTEBOOKS_DIR, resolve

KERNEL_NAME = "cmrpipe"
"""The Jupyter kernel the chapters run in; ``make`` registers it inside ``.venv``."""

LIBRARY_DIR = Path(__file__).resolve().parent
_CHAPTER_RE = re.compile(r"^(\d{2})_([A-Za-z0-9_]+)\.ipynb$")
_HIDE_TAG = "remove-cell"  # Jupyter Book drops cells with this tag from the HTML
log = logging.getLogger("cmrpipe.runner")


class _ExpectedPapermillWarnings(logging.Filter):
    """Drop papermill's "Passed unknown parameter" warnings.

    A chapter's ``parameters`` cell names only ``profile``; the run's other keys are
    injected by design and validated by :class:`Params`, so each would be a false alarm.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_ExpectedPapermillWarnings())


@dataclass(frozen=True)
class Chapter:
    """One chapter notebook: ``id`` is its two-digit number, ``name`` the rest."""

    id: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ChapterOutcome:
    chapter: Chapter
    status: str  # "ran" or "skipped"
    seconds: float
    output: Path


class RunnerError(RuntimeError):
    """The run cannot start or go on: a bad chapter list, a missing kernel."""


class ChapterFailed(RunnerError):
    """A cell of a chapter raised; the message says which chapter, cell and error."""

    def __init__(self, chapter: Chapter, output: Path, cell_index: int | None,
                 exec_count: int | None, ename: str, evalue: str, source: str):
        self.chapter, self.output = chapter, output
        self.cell_index, self.exec_count = cell_index, exec_count
        self.ename, self.evalue, self.source = ename, evalue, source
        where = "a cell" if cell_index is None else f"cell {cell_index + 1} of {chapter.filename}"
        if exec_count is not None:
            where += f" (execution count {exec_count})"
        lines = source.strip().splitlines()
        shown = "\n".join("    " + line for line in lines[:6]) + ("\n    ..." if len(lines) > 6 else "")
        super().__init__(
            f"Chapter {chapter.id} ({chapter.name}) failed at {where}:\n"
            f"  {ename}: {evalue}\n"
            f"The cell was:\n{shown}\n"
            f"The executed notebook, with the full traceback, is at {output}"
        )


# ---- chapters ---------------------------------------------------------------------

def discover_chapters(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Chapter]:
    """The chapter notebooks of ``notebooks_dir`` in order (``NN_name.ipynb``)."""
    chapters = []
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        match = _CHAPTER_RE.match(path.name)
        if match:
            chapters.append(Chapter(match.group(1), match.group(2), path))
    ids = [c.id for c in chapters]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise RunnerError(f"{notebooks_dir}: two notebooks share chapter number(s) {', '.join(duplicated)}")
    return chapters


def select_chapters(chapters: list[Chapter], ids: list[str] | None) -> list[Chapter]:
    """Keep the chapters named by ``ids`` (e.g. ``["01", "3"]``), in book order.

    Examples
    --------
    >>> cs = [Chapter("00", "papers", Path("00_papers.ipynb")), Chapter("01", "prep", Path("01_prep.ipynb"))]
    >>> [c.id for c in select_chapters(cs, ["1"])]
    ['01']
    """
    if not ids:
        return list(chapters)
    wanted = {i.strip().zfill(2) for i in ids if i.strip()}
    known = {c.id for c in chapters}
    unknown = sorted(wanted - known)
    if unknown:
        raise RunnerError(f"no chapter numbered {', '.join(unknown)}; the chapters are {', '.join(sorted(known))}")
    return [c for c in chapters if c.id in wanted]


# ---- hashing and stamps ------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebook_digest(path: Path) -> str:
    """sha256 of a notebook's cell types and sources: re-saving it without edits keeps it."""
    nb = nbformat.read(path, as_version=4)
    cells = [[c.cell_type, c.source, sorted(c.metadata.get("tags", []))] for c in nb.cells]
    return _sha256(json.dumps(cells).encode())


def library_digest(root: Path = LIBRARY_DIR) -> str:
    """sha256 over the library's Python sources and data files, by relative path."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".csv", ".yaml", ".json"} and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _inputs_digest(params: Params, upstream: dict[str, str]) -> str:
    parts = {"library": library_digest(), "upstream": upstream}
    manifest = resolve(params.cohort_manifest)
    if params.cohort_manifest != "synthetic" and manifest.is_file():
        parts["cohort_manifest"] = _sha256(manifest.read_bytes())
    return _sha256(json.dumps(parts, sort_keys=True).encode())


def _stamp_path(run_dir: Path, chapter: Chapter) -> Path:
    return run_dir / "logs" / "stamps" / f"{chapter.id}.json"


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---- notebooks for the book ------------------------------------------------------------

def notebook_errors(nb: nbformat.NotebookNode) -> list[str]:
    """What marks an executed notebook as failed, in words (empty when it ran cleanly).

    Papermill tags the cell it inserts at a failure ``papermill-error-cell-tag`` and
    sets ``metadata.papermill.exception``; a cell's output may also be an error.
    """
    problems = []
    if nb.metadata.get("papermill", {}).get("exception"):
        problems.append("papermill recorded an exception")
    for i, cell in enumerate(nb.cells):
        if "papermill-error-cell-tag" in cell.metadata.get("tags", []):
            problems.append(f"cell {i + 1} is papermill's error cell")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i + 1} raised {out.get('ename')}: {out.get('evalue')}")
    return problems


def _publish(executed: Path, book_path: Path, params: Params) -> None:
    """Copy an executed notebook into the book, hiding papermill's injected-parameters cell.

    The copy records which run made it (``metadata.cmrpipe``), so the book build can
    refuse a book that mixes chapters of two runs.
    """
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["cmrpipe"] = {"run_name": params.run_name, "profile": params.profile,
                              "params_digest": params.digest()}
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and _HIDE_TAG not in tags:
            tags.append(_HIDE_TAG)
    book_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, book_path)


def _source_cell_index(executed: Path, cell_index: int | None) -> int | None:
    """The index, in the chapter's own notebook, of a cell of its executed copy.

    Papermill numbers the cells of the executed copy before it adds its error banners,
    so with its injected-parameters cell; the reader counts cells in the chapter.
    """
    if cell_index is None:
        return None
    cells = [c for c in nbformat.read(executed, as_version=4).cells
             if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    return cell_index - sum(1 for c in cells[:cell_index] if "injected-parameters" in c.metadata.get("tags", []))


def check_kernel(kernel_name: str) -> None:
    """Raise :class:`RunnerError` with the fix when the Jupyter kernel cannot run the chapters.

    The kernel must exist and, when its spec names an interpreter by absolute path,
    that interpreter must belong to this environment: a kernel left over from another
    checkout or environment would import another ``cmrpipe`` and mix two versions.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = f"python -m ipykernel install --sys-prefix --name {kernel_name}"
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RunnerError(f"the Jupyter kernel {kernel_name!r} is not installed; `make book` or `make test` "
                          f"registers it, or run: {fix}") from None
    interpreter = Path(spec.argv[0]) if spec.argv else None
    if interpreter and interpreter.is_absolute() and Path(os.path.abspath(interpreter)).parent.parent != Path(
            os.path.abspath(sys.prefix)):
        raise RunnerError(f"the Jupyter kernel {kernel_name!r} ({spec.resource_dir}) runs {interpreter}, which is "
                          f"not this environment's Python ({sys.prefix}); register it here with: {fix}")


# ---- the run ---------------------------------------------------------------------------

def _log_to(run_dir: Path) -> logging.Handler:
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "logs" / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _record_timing(run_dir: Path, chapter: Chapter, status: str, seconds: float) -> None:
    row = {"chapter": chapter.id, "name": chapter.name, "status": status, "seconds": round(seconds, 3),
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(run_dir / "logs" / "timings.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    log.info("chapter %s (%s) %s in %.1f s", chapter.id, chapter.name, status, seconds)


def run_chapters(params_path: str | Path, chapter_ids: list[str] | None = None, force: bool = False, *,
                 notebooks_dir: Path = NOTEBOOKS_DIR, book_dir: Path = BOOK_DIR,
                 kernel_name: str = KERNEL_NAME, progress: bool = True) -> list[ChapterOutcome]:
    """Execute the chapters for one parameter file; see the module docstring.

    Parameters
    ----------
    params_path : path
        The run's parameter file (validated with :meth:`Params.from_yaml`).
    chapter_ids : list of str, optional
        Chapter numbers to run (all when None), always in book order.
    force : bool
        Re-run chapters even when their stamp says they are up to date.
    notebooks_dir, book_dir : path
        Where the chapter notebooks are, and where executed copies go for the book.
    kernel_name : str
        The Jupyter kernel to execute in.

    Returns
    -------
    list of ChapterOutcome
        One per selected chapter, in order, each ``ran`` or ``skipped``.

    Raises
    ------
    ChapterFailed
        At the first failing chapter; chapters after it are not run.
    """
    import papermill
    from tqdm.auto import tqdm

    params = Params.from_yaml(params_path)
    chapters = discover_chapters(notebooks_dir)
    selected = select_chapters(chapters, chapter_ids)
    check_kernel(kernel_name)

    run_dir = params.run_dir
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (run_dir / "params.yaml").write_text(params.to_yaml())
    handler = _log_to(run_dir)
    log.info("run %s: params %s, chapters %s, force=%s", run_dir, params_path,
             ",".join(c.id for c in selected), force)

    outcomes = []
    try:
        for chapter in tqdm(selected, desc=f"run {params.run_name}", unit="chapter", disable=not progress):
            upstream = {}
            for earlier in chapters:
                if earlier.id >= chapter.id:
                    break
                stamp = _read_stamp(_stamp_path(run_dir, earlier))
                if stamp:
                    upstream[earlier.id] = stamp["digest"]
            stamp = {"notebook": notebook_digest(chapter.path), "params": params.digest(),
                     "inputs": _inputs_digest(params, upstream)}
            stamp["digest"] = _sha256(json.dumps(stamp, sort_keys=True).encode())
            output = run_dir / "notebooks" / chapter.filename
            book_copy = Path(book_dir) / chapter.filename
            previous = _read_stamp(_stamp_path(run_dir, chapter))

            if not force and previous and previous.get("digest") == stamp["digest"] and output.exists():
                _publish(output, book_copy, params)  # the book may hold another run's copy
                _record_timing(run_dir, chapter, "skipped", 0.0)
                outcomes.append(ChapterOutcome(chapter, "skipped", 0.0, output))
                continue

            # an interrupted chapter leaves neither a stamp nor a stale page in the book
            _stamp_path(run_dir, chapter).unlink(missing_ok=True)
            book_copy.unlink(missing_ok=True)
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(chapter.path), str(output), parameters=params.to_dict(),
                    kernel_name=kernel_name, language="python", cwd=str(run_dir), progress_bar=False,
                    log_output=False,
                )
            except papermill.PapermillExecutionError as err:
                seconds = time.perf_counter() - start
                _publish(output, book_copy, params)  # the book build refuses it
                _record_timing(run_dir, chapter, "failed", seconds)
                raise ChapterFailed(chapter, output, _source_cell_index(output, err.cell_index),
                                    err.exec_count, err.ename, err.evalue, err.source) from None
            seconds = time.perf_counter() - start
            _publish(output, book_copy, params)
            stamp.update(chapter=chapter.id, seconds=round(seconds, 3),
                         finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            _stamp_path(run_dir, chapter).parent.mkdir(parents=True, exist_ok=True)
            _stamp_path(run_dir, chapter).write_text(json.dumps(stamp, indent=1))
            _record_timing(run_dir, chapter, "ran", seconds)
            outcomes.append(ChapterOutcome(chapter, "ran", seconds, output))
    finally:
        log.removeHandler(handler)
        handler.close()
    return outcomes

