"""Reading a synthetic cohort back for display: its DICOM pixels and its truth, per subject.

Only the synthetic-cohort chapter uses this, to show what the generator wrote;
the pipeline proper reads cohorts through :mod:`cmrpipe.io`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cmrpipe.io.dicom import read_files
from cmrpipe.io.manifest import load_manifest
from cmrpipe.io.views import group_views, lax_cine, sax_stack


def subject_images(cohort_dir: Path, key: str) -> dict[str, np.ndarray]:
    """Every view of a subject as (frames, rows, cols) pixel arrays, keyed sax_01.. (base first), lax_2ch, lax_4ch.

    Read with :mod:`cmrpipe.io`, as data preparation reads it, so the views and their
    order are those the pipeline sees (and, base first, those of the truth).
    """
    manifest = load_manifest(Path(cohort_dir) / "manifest.yaml")
    entry = next(s for s in manifest.subjects if s.key == key)
    views = group_views(read_files(manifest.root, manifest.subject_files(entry), key), key)
    stack = sax_stack(views["sax"], key)
    images = {f"sax_{k + 1:02d}": stack.images[k] for k in range(len(stack.images))}
    return images | {v: lax_cine(views[v], key, v).images for v in ("lax_2ch", "lax_4ch") if v in views}


def subject_truth(cohort_dir: Path, key: str) -> dict:
    """A subject's truth: label maps per view, landmarks, and the scalar attributes."""
    with h5py.File(Path(cohort_dir) / "truth" / f"{key}.h5") as h5:
        labels = {name: h5[name]["labels"][:] for name in h5 if name.startswith(("sax", "lax"))}
        landmarks = {name: h5["landmarks"][name][:] for name in h5["landmarks"]}
        attrs = {k: h5.attrs[k] for k in h5.attrs}
    return {"labels": labels, "landmarks": landmarks, "attrs": attrs}
