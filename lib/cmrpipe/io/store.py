"""The subject store: one HDF5 file per subject, ``index.csv`` and ``exclusions.csv``.

``ingest_cohort(manifest, store_dir)`` reads every subject of a manifest (in parallel,
with progress), checks it, and writes::

    store_dir/
      <key>.h5          images per view, geometry, label maps, landmarks (no identifiers)
      index.csv         one row per manifest subject: status, sizes, geometry, phases, what labels it has
      exclusions.csv    one row per excluded subject: key, protocol, stage, file, reason
      covariates.csv    the manifest's covariates (and lv_mass_g where a manual mass exists)

Per-subject HDF5 (``cmrpipe-store/1``)::

    attrs: key, protocol, n_frames, ed_frame, es_frame, phase_source, pitch_mm, thickness_mm,
           pixel_spacing_mm (rows, cols), inputs_sha256, index_row (JSON)
    sax/images (slices, frames, rows, cols) uint16, ordered along the slice normal, base first
    sax/position_lps (slices, 3), sax/trigger_ms (slices, frames); attrs orientation, affine_ijk_to_lps
      (the third index steps one pitch from slice to slice, towards the apex)
    lax_2ch/images, lax_4ch/images (frames, rows, cols); attrs position_lps, orientation,
      pixel_spacing_mm, affine_ijk_to_lps
    contours/labels (2, slices, rows, cols) uint8 ED, ES: 0 background, 1 cavity, 2 myocardium
      (cmrpipe.io.labels); contours/contoured (2, slices) bool
    inlinevf/labels (2, slices, rows, cols), inlinevf/present (2, slices); attrs frames (ED, ES)
    landmarks/<column> one dataset per column of cmrpipe.io.labels.landmark_points

Every file is checked against the manifest's sha256 before use; a subject whose
inputs are unchanged since it was stored is not read again. A subject that fails becomes an exclusion row; subjects
stored before it are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cmrpipe.io import dicom, labels, views
from cmrpipe.io.errors import SubjectDataError
from cmrpipe.io.manifest import Manifest, ManifestError, SubjectEntry, load_manifest, verify_files
from cmrpipe.workers import single_threaded

STORE_FORMAT = "cmrpipe-store/1"
INGEST_VERSION = "2"  # change when what is stored changes: every subject is then read again
# coverage QC: an end slice of the stack whose ED cavity is this large (of the largest slice's) means the LV goes
# on beyond the stack. The apex tapers, so a large apical cavity is clear; the base is wide, so only a cavity
# as large as the widest slice's says the base was missed.
COVERAGE_FRACTION = {"basal": 0.9, "apical": 0.5}
INDEX_COLUMNS = ["key", "protocol", "status", "store_file", "n_sax_slices", "n_frames", "rows", "cols",
                 "pitch_mm", "thickness_mm", "pixel_row_mm", "pixel_col_mm", "ed_frame", "es_frame",
                 "phase_source", "has_contours", "has_landmarks", "has_inlinevf", "has_lax_2ch", "has_lax_4ch",
                 "has_manual_mass", "inputs_sha256"]
EXCLUSION_COLUMNS = ["key", "protocol", "stage", "file", "reason"]


def inputs_digest(manifest: Manifest, entry: SubjectEntry) -> str:
    """The sha256 of a subject's inputs as the manifest lists them (files, checksums, ingest version)."""
    paths = manifest.subject_files(entry) + [p for p in (entry.contours, entry.landmarks) if p]
    text = "\n".join(f"{p} {manifest.checksums.get(p, '-')}" for p in sorted(paths))
    return hashlib.sha256(f"{INGEST_VERSION}\n{entry.protocol}\n{text}".encode()).hexdigest()


def _read_images(manifest: Manifest, entry: SubjectEntry) -> list[dicom.Image]:
    """The subject's images, from the files the manifest lists (and whose checksums were verified)."""
    return dicom.read_files(manifest.root, manifest.subject_files(entry), entry.key)


def _label_files(manifest: Manifest, entry: SubjectEntry) -> dict[str, str]:
    """The subject's label files that exist; all listed but missing is an exclusion."""
    listed = {name: p for name, p in (("contour", entry.contours), ("landmark", entry.landmarks)) if p}
    missing = [name for name, p in listed.items() if not (manifest.root / p).is_file()]
    if missing:
        what = " and ".join(missing)
        raise SubjectDataError(entry.key, listed[missing[0]], "labels",
                               f"{what} file{'s' if len(missing) > 1 else ''} missing")
    return listed


def _inlinevf(images: list[dicom.Image], stack: views.SaxStack, key: str) -> dict | None:
    """InlineVF overlays filled to label maps on the SAX stack, ED (larger cavity) first."""
    if not images:
        return None
    heights = stack.position_lps @ np.cross(stack.orientation[:3], stack.orientation[3:])
    found: dict[int, dict[int, np.ndarray]] = {}
    for image in images:  # an InlineVF copy without an overlay is a slice InlineVF did not contour
        if image.overlay is None or not image.overlay.any():
            continue
        k = int(np.argmin(np.abs(heights - image.normal @ image.position_lps)))
        if abs(heights[k] - image.normal @ image.position_lps) > 0.5:
            raise SubjectDataError(key, image.path, "geometry", "InlineVF image lies on no short-axis slice")
        if image.pixels.shape != stack.images.shape[2:]:
            raise SubjectDataError(key, image.path, "geometry", "InlineVF image matrix differs from the short axis")
        if not np.isfinite(image.trigger_ms):
            raise SubjectDataError(key, image.path, "labels", "InlineVF image without TriggerTime")
        frame = int(np.argmin(np.abs(stack.trigger_ms[k] - image.trigger_ms)))
        found.setdefault(frame, {})[k] = labels.fill_contour_lines(image.overlay)
    if not found:
        return None
    if len(found) != 2:
        raise SubjectDataError(key, images[0].path, "labels", f"InlineVF images on {len(found)} frames, not 2 (ED, ES)")
    cavity = {f: sum(int((m == labels.CAVITY).sum()) for m in maps.values()) for f, maps in found.items()}
    ed, es = sorted(found, key=lambda f: -cavity[f])
    maps = np.zeros((2, *stack.images.shape[:1], *stack.images.shape[2:]), np.uint8)
    present = np.zeros((2, stack.images.shape[0]), bool)
    for p, f in enumerate((ed, es)):
        for k, m in found[f].items():
            maps[p, k], present[p, k] = m, m.any()
    return {"labels": maps, "present": present, "frames": (ed, es)}


def _read_label_file(manifest: Manifest, entry: SubjectEntry, path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(manifest.root / path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SubjectDataError(entry.key, path, "labels", f"unreadable label file ({type(err).__name__}: {err})") \
            from None


def _check_coverage(contours: dict, key: str, path: str) -> None:
    """The LV cavity at ED must not fill an end slice of the stack (slices are base first)."""
    area = (contours["labels"][0] == labels.CAVITY).sum(axis=(1, 2))
    if area.max() == 0:
        return
    for end, name in ((0, "basal"), (len(area) - 1, "apical")):
        if area[end] >= COVERAGE_FRACTION[name] * area.max():
            raise SubjectDataError(key, path, "qc", f"{name} coverage missing: the LV cavity at ED on the {name} "
                                   f"end slice is {area[end] / area.max():.0%} of the largest")


def ingest_subject(manifest: Manifest, entry: SubjectEntry, store_dir: Path, manual_mass_keys=frozenset(),
                   compression: str | None = "lzf") -> dict:
    """Read, check and store one subject; return its index row.

    ``compression`` of the HDF5 images: ``"lzf"`` (with byte shuffling: about 60 % of
    the raw size, written at about 200 MB/s) or None (raw: faster, larger).

    Raises
    ------
    SubjectDataError
        Anything that makes the subject unusable (the stage and file named).
    """
    label_files = _label_files(manifest, entry)
    if not manifest.subject_files(entry):
        raise SubjectDataError(entry.key, entry.image_paths[0], "checksum",
                               "no file of the subject's images is listed in the manifest's checksums")
    verify_files(manifest, entry, manifest.subject_files(entry) + list(label_files.values()))
    digest = inputs_digest(manifest, entry)
    stored = _stored_row(store_dir / f"{entry.key}.h5", digest)
    if stored is not None:  # stored from these very files: not read again
        return stored | {"has_manual_mass": int(entry.key in manual_mass_keys)}
    images = _read_images(manifest, entry)
    grouped = views.group_views(images, entry.key)
    if "sax" not in grouped:
        raise SubjectDataError(entry.key, entry.image_paths[0], "ingest", "missing views: no short-axis cine found")
    stack = views.sax_stack(grouped["sax"], entry.key)
    lax = {v: views.lax_cine(grouped[v], entry.key, v) for v in ("lax_2ch", "lax_4ch") if v in grouped}
    ivf = _inlinevf(grouped.get("inlinevf", []), stack, entry.key)
    contours = points = None
    if "contour" in label_files:
        table = _read_label_file(manifest, entry, label_files["contour"])
        contours = labels.contour_masks(table, stack, entry.key, label_files["contour"])
        _check_coverage(contours, entry.key, label_files["contour"])
    if "landmark" in label_files:
        table = _read_label_file(manifest, entry, label_files["landmark"])
        points = labels.landmark_points(table, stack, lax, entry.key, label_files["landmark"])
    if contours is not None and contours["ed_frame"] >= 0 and contours["es_frame"] >= 0:
        ed, es, source = contours["ed_frame"], contours["es_frame"], "contours"
    elif ivf is not None:
        (ed, es), source = ivf["frames"], "inlinevf"
    else:
        ed, es, source = -1, -1, "unknown"  # found later from the segmentation's cavity curve
    row = {"key": entry.key, "protocol": entry.protocol, "status": "included", "store_file": f"{entry.key}.h5",
           "n_sax_slices": stack.images.shape[0], "n_frames": stack.images.shape[1],
           "rows": stack.images.shape[2], "cols": stack.images.shape[3], "pitch_mm": round(stack.pitch_mm, 4),
           "thickness_mm": stack.thickness_mm, "pixel_row_mm": float(stack.spacing_mm[0]),
           "pixel_col_mm": float(stack.spacing_mm[1]), "ed_frame": int(ed), "es_frame": int(es),
           "phase_source": source, "has_contours": int(contours is not None), "has_landmarks": int(points is not None),
           "has_inlinevf": int(ivf is not None), "has_lax_2ch": int("lax_2ch" in lax),
           "has_lax_4ch": int("lax_4ch" in lax), "has_manual_mass": int(entry.key in manual_mass_keys),
           "inputs_sha256": digest}
    _write(store_dir / row["store_file"], row, stack, lax, contours, ivf, points, compression)
    return row


def _write(path: Path, row: dict, stack, lax, contours, ivf, points, compression: str | None) -> None:
    """Write a subject's HDF5 to a temporary name, then rename it (a crash leaves no half file)."""
    tmp = path.with_name(path.name + ".partial")
    packed = {"compression": compression, "shuffle": True} if compression else {}
    with h5py.File(tmp, "w") as h5:
        h5.attrs.update(format=STORE_FORMAT, key=row["key"], protocol=row["protocol"], n_frames=row["n_frames"],
                        ed_frame=row["ed_frame"], es_frame=row["es_frame"], phase_source=row["phase_source"],
                        pitch_mm=stack.pitch_mm, thickness_mm=stack.thickness_mm,
                        pixel_spacing_mm=stack.spacing_mm, inputs_sha256=row["inputs_sha256"],
                        index_row=json.dumps(row))
        sax = h5.create_group("sax")
        sax.create_dataset("images", data=stack.images, chunks=(1, 1, *stack.images.shape[2:]), **packed)
        sax.create_dataset("position_lps", data=stack.position_lps)
        sax.create_dataset("trigger_ms", data=stack.trigger_ms)
        sax.attrs.update(orientation=stack.orientation, affine_ijk_to_lps=stack.affine_ijk_to_lps)
        for name, cine in lax.items():
            g = h5.create_group(name)
            g.create_dataset("images", data=cine.images, chunks=(1, *cine.images.shape[1:]), **packed)
            g.create_dataset("trigger_ms", data=cine.trigger_ms)
            g.attrs.update(position_lps=cine.position_lps, orientation=cine.orientation,
                           pixel_spacing_mm=cine.spacing_mm, affine_ijk_to_lps=cine.affine_ijk_to_lps)
        if contours is not None:
            g = h5.create_group("contours")
            g.create_dataset("labels", data=contours["labels"], **packed)
            g.create_dataset("contoured", data=contours["contoured"])
        if ivf is not None:
            g = h5.create_group("inlinevf")
            g.create_dataset("labels", data=ivf["labels"], **packed)
            g.create_dataset("present", data=ivf["present"])
            g.attrs["frames"] = ivf["frames"]
        if points is not None:
            g = h5.create_group("landmarks")
            for column in points.columns:
                values = points[column].to_numpy()
                g.create_dataset(column, data=values.astype("S") if values.dtype == object else values)
    os.replace(tmp, path)


def _stored_row(path: Path, digest: str) -> dict | None:
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("inputs_sha256") == digest:
                return json.loads(h5.attrs["index_row"])
    except (OSError, KeyError, ValueError):
        pass
    return None


_WORKER: dict = {}  # in a worker process: the manifest and settings it was started with


def _start_worker(manifest: Manifest, store_dir: str, manual_mass_keys: frozenset, compression) -> None:
    single_threaded()
    _WORKER.update(manifest=manifest, store_dir=store_dir, masses=manual_mass_keys, compression=compression)


def _work(key: str) -> tuple[dict, dict | None]:
    return _ingest_or_exclude(_WORKER["manifest"], key, _WORKER["store_dir"], _WORKER["masses"],
                              _WORKER["compression"])


def _ingest_or_exclude(manifest: Manifest, key: str, store_dir, manual_mass_keys, compression):
    entry = next(e for e in manifest.subjects if e.key == key)
    try:
        return ingest_subject(manifest, entry, Path(store_dir), manual_mass_keys, compression), None
    except SubjectDataError as err:
        return _excluded_row(entry), err.row(entry.protocol)
    except Exception as err:  # a bug or an unforeseen file: the subject is excluded, the run goes on
        return _excluded_row(entry), {"key": key, "protocol": entry.protocol, "stage": "ingest",
                                      "file": entry.image_paths[0],
                                      "reason": f"unexpected error ({type(err).__name__}: {err})"}


def _excluded_row(entry: SubjectEntry) -> dict:
    return {"key": entry.key, "protocol": entry.protocol, "status": "excluded", "store_file": ""}


def manual_mass_keys(manifest: Manifest) -> frozenset:
    """Subjects with a manual LV mass in the manifest's table."""
    if not manifest.manual_mass or not (manifest.root / manifest.manual_mass).is_file():
        return frozenset()
    table = pd.read_csv(manifest.root / manifest.manual_mass)
    if not {"key", "lv_mass_g"} <= set(table.columns):
        raise ManifestError(f"{manifest.root / manifest.manual_mass}: columns must include key and lv_mass_g")
    return frozenset(table.loc[table.lv_mass_g.notna(), "key"].astype(str))


def ingest_cohort(manifest_path: str | Path, store_dir: str | Path, workers: int = 1, progress: bool = True,
                  compression: str | None = "lzf") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest every subject of a manifest into the store; return (index, exclusions).

    Every subject's files are checked against the manifest's checksums first; a
    subject stored from the same files (same inputs digest) is then reused without
    reading its images again.
    """
    from tqdm.auto import tqdm

    manifest = load_manifest(manifest_path)
    store_dir = Path(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    masses = manual_mass_keys(manifest)
    rows: dict[str, dict] = {}
    excluded: dict[str, dict] = {}
    todo = [entry.key for entry in manifest.subjects]
    bar = tqdm(total=len(todo), desc="ingesting subjects", unit="subject", disable=not progress)
    if workers > 1 and len(todo) > 1:
        try:
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"),
                                     initializer=_start_worker,
                                     initargs=(manifest, str(store_dir), masses, compression)) as pool:
                for future in as_completed([pool.submit(_work, key) for key in todo]):
                    _collect(*future.result(), rows, excluded, store_dir)
                    bar.update()
        except BrokenProcessPool:  # a worker died (e.g. out of memory): finish the rest in this process
            pass
    for key in [k for k in todo if k not in rows]:
        _collect(*_ingest_or_exclude(manifest, key, store_dir, masses, compression), rows, excluded, store_dir)
        bar.update()
    bar.close()
    order = [e.key for e in manifest.subjects]
    index = pd.DataFrame([rows[k] for k in order], columns=INDEX_COLUMNS)
    counts = [c for c in INDEX_COLUMNS if c.startswith(("n_", "has_")) or c in ("rows", "cols", "ed_frame", "es_frame")]
    index[counts] = index[counts].astype("Int64")  # excluded subjects: empty, not NaN floats
    exclusions = pd.DataFrame([excluded[k] for k in order if k in excluded], columns=EXCLUSION_COLUMNS)
    index.to_csv(store_dir / "index.csv", index=False)
    exclusions.to_csv(store_dir / "exclusions.csv", index=False)
    _write_covariates(manifest, store_dir)
    return index, exclusions


def _collect(row, exclusion, rows, excluded, store_dir: Path) -> None:
    rows[row["key"]] = row
    if exclusion is not None:
        excluded[row["key"]] = exclusion
        (store_dir / f"{row['key']}.h5").unlink(missing_ok=True)  # an older copy no longer matches its inputs


COVARIATE_COLUMNS = ["key", "protocol", "age_years", "sex", "height_cm", "weight_kg", "bsa_m2", "sbp_mmhg",
                     "dbp_mmhg", "hr_bpm", "hypertension", "diabetes", "smoking_status", "smoking_current",
                     "high_cholesterol", "calcium_score_positive", "heart_failure", "atrial_fibrillation", "lv_mass_g"]
"""The covariates copied into the store; any other column of a cohort's table (an ID, a date) stays out."""


def _write_covariates(manifest: Manifest, store_dir: Path) -> None:
    if not manifest.covariates or not (manifest.root / manifest.covariates).is_file():
        return
    covariates = pd.read_csv(manifest.root / manifest.covariates)
    if manifest.manual_mass and (manifest.root / manifest.manual_mass).is_file():
        covariates = covariates.merge(pd.read_csv(manifest.root / manifest.manual_mass)[["key", "lv_mass_g"]],
                                      on="key", how="left")
    covariates[[c for c in COVARIATE_COLUMNS if c in covariates]].to_csv(store_dir / "covariates.csv", index=False)


@dataclass(frozen=True)
class StoredSubject:
    """One subject read back from the store (what every later stage works from).

    Attributes
    ----------
    key, protocol : str
    sax_images : (slices, frames, rows, cols) array
        Base first.
    sax_affine_ijk_to_lps : (4, 4) float array
        (row, col, slice) -> LPS mm.
    pixel_spacing_mm : (2,) float array
    pitch_mm : float
    ed_frame, es_frame : int
        -1 where unknown.
    contours : (2, slices, rows, cols) uint8 array or None
        Core-lab label maps at ED and ES (:mod:`cmrpipe.io.labels` codes).
    contoured : (2, slices) bool array or None
    inlinevf : (2, slices, rows, cols) uint8 array or None
    lax : dict
        ``lax_2ch`` / ``lax_4ch`` -> (frames, rows, cols) images.
    lax_affine_ijk_to_lps : dict
        The same keys -> (4, 4) affines.
    landmarks : DataFrame or None
    sax_trigger_ms : (slices, frames) float array or None
        Trigger time of each SAX image, ms.
    """

    key: str
    protocol: str
    sax_images: np.ndarray
    sax_affine_ijk_to_lps: np.ndarray
    pixel_spacing_mm: np.ndarray
    pitch_mm: float
    ed_frame: int
    es_frame: int
    contours: np.ndarray | None
    contoured: np.ndarray | None
    inlinevf: np.ndarray | None
    lax: dict
    lax_affine_ijk_to_lps: dict
    landmarks: pd.DataFrame | None
    sax_trigger_ms: np.ndarray | None = None

    @property
    def frame_interval_ms(self) -> float | None:
        """The median time between cine frames, ms (None when the trigger times are unknown)."""
        if self.sax_trigger_ms is None or self.sax_trigger_ms.shape[-1] < 2:
            return None
        step = np.nanmedian(np.diff(self.sax_trigger_ms, axis=-1))
        return float(step) if np.isfinite(step) and step > 0 else None


def load_subject(store_dir: str | Path, key: str) -> StoredSubject:
    """Read a subject's HDF5 from the store.

    Raises
    ------
    FileNotFoundError
        When the subject is not in the store (excluded, or not ingested yet).
    """
    path = Path(store_dir) / f"{key}.h5"
    if not path.is_file():
        raise FileNotFoundError(f"{key} is not in the store {store_dir} (excluded, or not ingested)")
    with h5py.File(path, "r") as h5:
        optional = lambda name: h5[name][:] if name in h5 else None
        lax = {v: h5[f"{v}/images"][:] for v in ("lax_2ch", "lax_4ch") if v in h5}
        landmarks = None
        if "landmarks" in h5:
            landmarks = pd.DataFrame({c: h5["landmarks"][c][:] for c in h5["landmarks"]})
            for column in ("view", "point"):
                landmarks[column] = landmarks[column].str.decode("utf-8")
        return StoredSubject(
            key=str(h5.attrs["key"]), protocol=str(h5.attrs["protocol"]), sax_images=h5["sax/images"][:],
            sax_affine_ijk_to_lps=h5["sax"].attrs["affine_ijk_to_lps"], pixel_spacing_mm=h5.attrs["pixel_spacing_mm"],
            pitch_mm=float(h5.attrs["pitch_mm"]), ed_frame=int(h5.attrs["ed_frame"]), es_frame=int(h5.attrs["es_frame"]),
            contours=optional("contours/labels"), contoured=optional("contours/contoured"),
            inlinevf=optional("inlinevf/labels"), lax=lax,
            lax_affine_ijk_to_lps={v: h5[v].attrs["affine_ijk_to_lps"] for v in lax}, landmarks=landmarks,
            sax_trigger_ms=optional("sax/trigger_ms"))
