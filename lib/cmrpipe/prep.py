"""Data preparation for a run (chapter 01): the run's manifest into the subject store, with splits.

``prepare(params)`` ingests every subject of the run's cohort into ``<run_dir>/store``
(one HDF5 per subject, ``index.csv``, ``exclusions.csv``, ``covariates.csv``), adds the
seeded per-subject splits of both papers to the index, and writes the ``prep.*`` keys
of ``results/summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cmrpipe.io.store import ingest_cohort
from cmrpipe.paths import resolve
from cmrpipe.report.summary import update_summary
from cmrpipe.splits import assign_splits
from cmrpipe.workers import n_cores


@dataclass(frozen=True)
class Prepared:
    """What data preparation produced: the store folder, its index (with splits), exclusions, covariates."""

    store_dir: Path
    index: pd.DataFrame
    exclusions: pd.DataFrame
    covariates: pd.DataFrame


def manifest_path(params) -> Path:
    """The run's cohort manifest: the synthetic cohort's own (made by chapter 00b) or the one named.

    Raises
    ------
    FileNotFoundError
        When the manifest does not exist (for a synthetic run: chapter 00b has not run).
    """
    if params.cohort_manifest == "synthetic":
        path = params.run_dir / "cohort" / "manifest.yaml"
        hint = "run chapter 00b (the synthetic cohort) first"
    else:
        path = resolve(params.cohort_manifest)
        hint = "check cohort_manifest in the parameters"
    if not path.is_file():
        raise FileNotFoundError(f"cohort manifest {path} not found; {hint}")
    return path


def prepare(params, workers: int | None = None, progress: bool = True) -> Prepared:
    """Ingest the run's cohort into its store, split it, and record the counts in the summary."""
    store_dir = params.run_dir / "store"
    compression = None if params.store_compression == "none" else params.store_compression
    index, exclusions = ingest_cohort(manifest_path(params), store_dir, workers=workers or n_cores(),
                                      progress=progress, compression=compression)
    index = assign_splits(index, params.seed)
    index.to_csv(store_dir / "index.csv", index=False)
    path = store_dir / "covariates.csv"
    covariates = pd.read_csv(path) if path.exists() else pd.DataFrame({"key": index.key})
    update_summary(params.run_dir, {"prep.n_subjects": len(index),
                                    "prep.n_included": int((index.status == "included").sum()),
                                    "prep.n_excluded": int((index.status == "excluded").sum())})
    return Prepared(store_dir, index, exclusions, covariates)
