"""Reading a synthetic cohort back for display: its DICOM pixels and its truth, per subject.

Only the synthetic-cohort chapter uses this, to show what the generator wrote;
the pipeline proper reads cohorts through :mod:`cmrpipe.io`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pydicom

from cmrpipe.synth.cohort import UKB_EID_BASE


def _series_frames(datasets: list) -> dict[str, np.ndarray]:
    """Group datasets into views (sax_01.., lax_2ch, lax_4ch), frames ordered by TriggerTime."""
    views: dict[str, list] = {}
    for ds in datasets:
        desc = str(ds.SeriesDescription).lower()
        if desc.endswith("inlinevf"):
            continue
        if desc.startswith("sax"):  # MESA: one series, slices by InstanceNumber
            n = int(ds.CardiacNumberOfImages)
            name = f"sax_{(int(ds.InstanceNumber) - 1) // n + 1:02d}"
        elif "sax_b" in desc:
            name = f"sax_{int(desc.split('_b')[1]):02d}"
        else:
            name = "lax_" + desc.split("_")[-1].split()[0]
        views.setdefault(name, []).append(ds)
    return {name: np.stack([d.pixel_array for d in sorted(group, key=lambda d: float(d.TriggerTime))])
            for name, group in sorted(views.items())}


def subject_images(cohort_dir: Path, key: str) -> dict[str, np.ndarray]:
    """Every view of a subject as (frames, rows, cols) pixel arrays, keyed sax_01.., lax_2ch, lax_4ch."""
    cohort_dir = Path(cohort_dir)
    if key.startswith("mesa"):
        files = sorted((cohort_dir / "mesa" / "dicom" / key).rglob("*.dcm"))
        return _series_frames([pydicom.dcmread(f) for f in files])
    eid = UKB_EID_BASE + int(key.split("_")[1])
    datasets = []
    for field in ("20209", "20208"):
        with zipfile.ZipFile(cohort_dir / "ukb" / "bulk" / f"{eid}_{field}_2_0.zip") as z:
            datasets += [pydicom.dcmread(io.BytesIO(z.read(n))) for n in z.namelist() if n.endswith(".dcm")]
    return _series_frames(datasets)


def subject_truth(cohort_dir: Path, key: str) -> dict:
    """A subject's truth: label maps per view, landmarks, and the scalar attributes."""
    with h5py.File(Path(cohort_dir) / "truth" / f"{key}.h5") as h5:
        labels = {name: h5[name]["labels"][:] for name in h5 if name.startswith(("sax", "lax"))}
        landmarks = {name: h5["landmarks"][name][:] for name in h5["landmarks"]}
        attrs = {k: h5.attrs[k] for k in h5.attrs}
    return {"labels": labels, "landmarks": landmarks, "attrs": attrs}
