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
and the executions of the chapters before it (the hash of each one's executed
notebook), so re-running an earlier chapter, even with ``--force``, re-runs the
later ones. The first failing chapter stops the run with a :class:`ChapterFailed`
that says, in plain words, which chapter, which cell and what error; it is also
written to the run's log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import nbformat

from cmrpipe.params import Params
from cmrpipe.paths import BOOK_DIR, NOTEBOOKS_DIR, resolve

KERNEL_NAME = "cmrpipe"
"""The Jupyter kernel the chapters run in; ``make`` registers it inside ``.venv``."""

LIBRARY_DIR = Path(__file__).resolve().parent
_CHAPTER_RE = re.compile(r"^(\d{2}[a-z]?)_([A-Za-z0-9_]+)\.ipynb$")
_HIDE_TAG = "remove-cell"  # Jupyter Book drops cells with this tag from the HTML
log = logging.getLogger("cmrpipe.runner")


@dataclass(frozen=True)
class Chapter:
    """One chapter notebook: ``id`` is its number (two digits and an optional letter, e.g.
    ``00b``, which sorts between ``00`` and ``01``), ``name`` the rest."""

    id: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ChapterOutcome:
    """What :func:`run_chapters` did with one chapter: ``status`` is "ran" or "skipped"."""

    chapter: Chapter
    status: str
    duration_s: float
    output: Path


class RunnerError(RuntimeError):
    """The run cannot start or go on: a bad chapter list, a missing kernel or manifest."""


class ChapterFailed(RunnerError):
    """A chapter failed; the message says which chapter, which cell and what error."""

    def __init__(self, chapter: Chapter, output: Path, cell_index: int | None,
                 exec_count: int | None, ename: str, evalue: str, source: str):
        self.chapter, self.output = chapter, output
        self.cell_index, self.exec_count = cell_index, exec_count
        self.ename, self.evalue, self.source = ename, evalue, source
        where = "a cell" if cell_index is None else f"cell {cell_index + 1} of {chapter.filename}"
        if exec_count is not None:
            where += f" (execution count {exec_count})"
        message = f"Chapter {chapter.id} ({chapter.name}) failed at {where}:\n  {ename}: {evalue}\n"
        lines = source.strip().splitlines()
        if lines:
            shown = "\n".join("    " + line for line in lines[:6]) + ("\n    ..." if len(lines) > 6 else "")
            message += f"The cell was:\n{shown}\n"
        if output.exists():
            message += f"The executed notebook, with the full traceback, is at {output}"
        super().__init__(message.rstrip())


# ---- chapters ---------------------------------------------------------------------

def chapter_id(filename: str) -> str | None:
    """The chapter number of a notebook file name, or None when it is not a chapter.

    Examples
    --------
    >>> chapter_id("00b_synthetic_cohort.ipynb"), chapter_id("03_segmentation.ipynb"), chapter_id("x.ipynb")
    ('00b', '03', None)
    """
    match = _CHAPTER_RE.match(filename)
    return match.group(1) if match else None


def discover_chapters(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Chapter]:
    """The chapter notebooks of a folder, in book order.

    Parameters
    ----------
    notebooks_dir : path
        Folder of ``NN_name.ipynb`` notebooks; other notebooks there are ignored
        with a warning that names them.

    Returns
    -------
    list of Chapter
    """
    chapters = []
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        match = _CHAPTER_RE.match(path.name)
        if match:
            chapters.append(Chapter(match.group(1), match.group(2), path))
        else:
            warnings.warn(f"{path} is not a chapter (chapters are named NN_name.ipynb or NNx_name.ipynb, "
                          "the name of letters, digits and underscores); it is not run", stacklevel=2)
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
    wanted = {i.strip().zfill(2) if i.strip().isdigit() else i.strip().zfill(3) for i in ids if i.strip()}
    known = {c.id for c in chapters}
    unknown = sorted(wanted - known)
    if unknown:
        folder = chapters[0].path.parent if chapters else "the notebooks folder"
        raise RunnerError(f"no chapter numbered {', '.join(unknown)} in {folder}; "
                          f"the chapters are {', '.join(sorted(known)) or 'none'}")
    return [c for c in chapters if c.id in wanted]


# ---- hashing and stamps ------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebook_digest(path: Path) -> str:
    """sha256 of a notebook's cell types, sources and tags: re-saving it without edits keeps it."""
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


def _manifest_digest(params: Params) -> str | None:
    """sha256 of the cohort manifest file (None for the synthetic cohort)."""
    if params.cohort_manifest == "synthetic":
        return None
    manifest = resolve(params.cohort_manifest)
    if not manifest.is_file():
        raise RunnerError(f"cohort_manifest {params.cohort_manifest!r} names no file ({manifest}); "
                          "give a manifest in data_manifest/ or 'synthetic'")
    return _sha256(manifest.read_bytes())


def _stamp_path(run_dir: Path, chapter: Chapter) -> Path:
    return run_dir / "logs" / "stamps" / f"{chapter.id}.json"


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _upstream_outputs(run_dir: Path, chapters: list[Chapter], chapter: Chapter) -> dict[str, str]:
    """The execution hash of every earlier chapter that has a stamp in this run."""
    outputs = {}
    for earlier in chapters:
        if earlier.id >= chapter.id:
            break
        stamp = _read_stamp(_stamp_path(run_dir, earlier))
        if stamp and "output" in stamp:
            outputs[earlier.id] = stamp["output"]
    return outputs


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


def _publish(executed: Path, book_path: Path, params: Params, stamp: dict | None) -> None:
    """Copy an executed notebook into the book, hiding papermill's injected-parameters cell.

    The copy records which run and which execution made it (``metadata.cmrpipe``),
    so the book build can refuse a book that mixes runs or holds a chapter computed
    from an older execution of an earlier chapter.
    """
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["cmrpipe"] = {"run_name": params.run_name, "profile": params.profile,
                              "params_digest": params.digest(),
                              "output": (stamp or {}).get("output"), "upstream": (stamp or {}).get("upstream", {})}
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and _HIDE_TAG not in tags:
            tags.append(_HIDE_TAG)
    book_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, book_path)


def _failing_cell(executed: Path, cell_index: int | None = None) -> tuple[int | None, str]:
    """Index (in the chapter's own numbering) and source of the cell that failed.

    Papermill numbers the cells of the executed copy before it adds its error banners,
    so with its injected-parameters cell; the reader counts cells in the chapter.
    Without an index (the kernel died, a cell timed out), the cell papermill marked
    as running or failed is the one, else the last cell papermill started.
    """
    if not executed.exists():
        return None, ""
    cells = [c for c in nbformat.read(executed, as_version=4).cells
             if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    if cell_index is None:
        marks = [c.metadata.get("papermill", {}) for c in cells]
        failed = [i for i, m in enumerate(marks) if m.get("status") in ("running", "failed")]
        started = [i for i, m in enumerate(marks) if m.get("start_time")]
        if not (failed or started):
            return None, ""
        cell_index = failed[0] if failed else started[-1]
    injected = sum(1 for c in cells[:cell_index] if "injected-parameters" in c.metadata.get("tags", []))
    return cell_index - injected, cells[cell_index].source


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

class _ExpectedPapermillWarnings(logging.Filter):
    """Drop papermill's "Passed unknown parameter" warnings.

    A chapter's ``parameters`` cell names only ``profile``; the run's other keys are
    injected by design and validated by :class:`Params`, so each would be a false alarm.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


@contextlib.contextmanager
def _run_logging(run_dir: Path) -> Iterator[None]:
    """Log to ``<run_dir>/logs/run.log`` and quiet papermill's expected warnings, for one run."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "logs" / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    quiet = _ExpectedPapermillWarnings()
    previous_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    logging.getLogger("papermill").addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger("papermill").removeFilter(quiet)
        log.setLevel(previous_level)
        log.removeHandler(handler)
        handler.close()


def _record_timing(run_dir: Path, chapter: Chapter, status: str, duration_s: float) -> None:
    row = {"chapter": chapter.id, "name": chapter.name, "status": status, "duration_s": round(duration_s, 3),
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(run_dir / "logs" / "timings.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    log.info("chapter %s (%s) %s in %.1f s", chapter.id, chapter.name, status, duration_s)


def _execute(chapter: Chapter, output: Path, params: Params, kernel_name: str, run_dir: Path) -> None:
    """Run one chapter with papermill; raise :class:`ChapterFailed` for any failure inside it."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        papermill.execute_notebook(
            str(chapter.path), str(output), parameters=params.to_dict(), kernel_name=kernel_name,
            language="python", cwd=str(run_dir), progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as err:
        index, _ = _failing_cell(output, err.cell_index)
        raise ChapterFailed(chapter, output, index, err.exec_count, err.ename, err.evalue, err.source) from None
    except (DeadKernelError, CellTimeoutError, papermill.PapermillException) as err:
        index, source = _failing_cell(output)
        evalue = str(err).strip() or "(no message)"
        if isinstance(err, DeadKernelError):
            evalue += " (the kernel process ended: out of memory, a crash, or os._exit in the chapter)"
        raise ChapterFailed(chapter, output, index, None, type(err).__name__, evalue, source) from None


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
    progress : bool
        Show a progress bar over the chapters.

    Returns
    -------
    list of ChapterOutcome
        One per selected chapter, in order, each ``ran`` or ``skipped``.

    Raises
    ------
    ChapterFailed
        At the first failing chapter; chapters after it are not run.
    RunnerError
        Before any chapter runs: unknown chapter numbers, a missing kernel or manifest.
    """
    from tqdm.auto import tqdm

    params = Params.from_yaml(params_path)
    chapters = discover_chapters(notebooks_dir)
    selected = select_chapters(chapters, chapter_ids)
    check_kernel(kernel_name)
    manifest = _manifest_digest(params)
    library = library_digest()

    run_dir = params.run_dir
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (run_dir / "params.yaml").write_text(params.to_yaml())
    outcomes = []
    with _run_logging(run_dir):
        log.info("run %s: params %s, chapters %s, force=%s", run_dir, params_path,
                 ",".join(c.id for c in selected), force)
        for chapter in tqdm(selected, desc=f"run {params.run_name}", unit="chapter", disable=not progress):
            upstream = _upstream_outputs(run_dir, chapters, chapter)
            stamp = {"notebook": notebook_digest(chapter.path), "params": params.digest(),
                     "inputs": _sha256(json.dumps([library, manifest, upstream], sort_keys=True).encode())}
            stamp["digest"] = _sha256(json.dumps(stamp, sort_keys=True).encode())
            output = run_dir / "notebooks" / chapter.filename
            book_copy = Path(book_dir) / chapter.filename
            previous = _read_stamp(_stamp_path(run_dir, chapter))

            if not force and previous and previous.get("digest") == stamp["digest"] and output.exists():
                _publish(output, book_copy, params, previous)  # the book may hold another run's copy
                _record_timing(run_dir, chapter, "skipped", 0.0)
                outcomes.append(ChapterOutcome(chapter, "skipped", 0.0, output))
                continue

            # an interrupted chapter leaves neither a stamp nor a stale page in the book
            _stamp_path(run_dir, chapter).unlink(missing_ok=True)
            book_copy.unlink(missing_ok=True)
            start = time.perf_counter()
            try:
                _execute(chapter, output, params, kernel_name, run_dir)
            except ChapterFailed as failure:
                if output.exists():
                    _publish(output, book_copy, params, None)  # the book build refuses it
                _record_timing(run_dir, chapter, "failed", time.perf_counter() - start)
                log.error("%s", failure)
                raise
            duration_s = time.perf_counter() - start
            stamp.update(chapter=chapter.id, upstream=upstream, output=_sha256(output.read_bytes()),
                         duration_s=round(duration_s, 3),
                         finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            _stamp_path(run_dir, chapter).parent.mkdir(parents=True, exist_ok=True)
            _stamp_path(run_dir, chapter).write_text(json.dumps(stamp, indent=1))
            _publish(output, book_copy, params, stamp)
            _record_timing(run_dir, chapter, "ran", duration_s)
            outcomes.append(ChapterOutcome(chapter, "ran", duration_s, output))
    return outcomes
