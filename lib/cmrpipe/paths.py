"""Where the project's fixed folders are.

The package is installed editable from the repository (``pip install -e .``), so
the repository root is two levels above this file. ``CMRPIPE_ROOT`` overrides it
for an installation that lives elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("CMRPIPE_ROOT", Path(__file__).resolve().parents[2]))
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BOOK_DIR = REPO_ROOT / "book"
PARAMS_DIR = REPO_ROOT / "params"
BOOK_CONFIG = REPO_ROOT / "_config.yml"
BOOK_TOC = REPO_ROOT / "_toc.yml"
PAPERS_DIR = REPO_ROOT.parent / "shared" / "papers"


def resolve(path: str | os.PathLike, root: Path = REPO_ROOT) -> Path:
    """Return ``path`` as an absolute path, taking a relative one as relative to ``root``.

    Examples
    --------
    >>> str(resolve("runs/x", Path("/repo")))
    '/repo/runs/x'
    >>> str(resolve("/data/runs/x", Path("/repo")))
    '/data/runs/x'
    """
    path = Path(path).expanduser()
    return path if path.is_absolute() else root / path
