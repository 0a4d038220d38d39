"""``results/summary.json``: one flat JSON object of a run's headline figures, written by every chapter."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def summary_path(run_dir: Path) -> Path:
    """Where a run's summary lives."""
    return Path(run_dir) / "results" / "summary.json"


def update_summary(run_dir: Path, values: dict) -> dict:
    """Merge ``values`` into the run's summary (keys like ``prep.n_subjects``) and return the whole summary.

    Values must be numbers or strings; NaN is written as null. The file is replaced
    atomically, so a reader never sees half of it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = update_summary(Path(d), {"prep.n_subjects": 4})
    ...     update_summary(Path(d), {"prep.n_included": 3.0, "seg.dice": float("nan")})
    {'prep.n_included': 3.0, 'prep.n_subjects': 4, 'seg.dice': None}
    """
    path = summary_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = json.loads(path.read_text()) if path.exists() else {}
    for key, value in values.items():
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise TypeError(f"summary value {key!r} must be a number or a string, got {type(value).__name__}")
        summary[key] = None if isinstance(value, float) and math.isnan(value) else value
    summary = dict(sorted(summary.items()))
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, path)
    return summary
